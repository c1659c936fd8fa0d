//! The conformance suite can fail: deliberately broken optimisers are caught.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use danas_optim::conformance::{check_determinism, check_errors, check_snapshot, check_valid_proposals};
use danas_optim::{Ledger, OptimError, Optimizer, Outcome, Proposal, RandomSearch, TrialId};
use danas_space::{Genome, SearchSpace};
use rand::SeedableRng;

static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Wraps random search and breaks one rule.
struct Broken {
    inner: RandomSearch,
    flaw: Flaw,
    ledger: Ledger,
}

#[derive(Clone, Copy)]
enum Flaw {
    InvalidGenome,
    AcceptsDoubleTell,
    IgnoresRestore,
    Nondeterministic,
}

impl Optimizer for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn space(&self) -> &dyn SearchSpace {
        self.inner.space()
    }
    fn ask(&mut self, n: usize) -> Result<Vec<Proposal>, OptimError> {
        let mut p = self.inner.ask(n)?;
        match self.flaw {
            Flaw::InvalidGenome => {
                if let Some(first) = p.first_mut() {
                    first.genome = Genome(vec![u16::MAX; first.genome.0.len()]);
                }
            }
            Flaw::Nondeterministic => {
                // depends on a process-wide counter, not on the seed
                let k = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(k);
                for q in &mut p {
                    q.genome = self.inner.space().sample(&mut rng);
                }
            }
            _ => {}
        }
        for q in &p {
            self.ledger.issue(q.genome.clone());
        }
        Ok(p)
    }
    fn tell(&mut self, id: TrialId, outcome: Outcome) -> Result<(), OptimError> {
        match self.flaw {
            Flaw::AcceptsDoubleTell => {
                let _ = self.inner.tell(id, outcome);
                Ok(())
            }
            _ => self.inner.tell(id, outcome),
        }
    }
    fn snapshot(&self) -> Result<serde_json::Value, OptimError> {
        self.inner.snapshot()
    }
    fn restore(&mut self, s: serde_json::Value) -> Result<(), OptimError> {
        match self.flaw {
            Flaw::IgnoresRestore => Ok(()),
            _ => self.inner.restore(s),
        }
    }
}

fn factory(flaw: Flaw) -> impl Fn(Arc<dyn SearchSpace>, u64) -> Broken {
    move |space, seed| Broken { inner: RandomSearch::new(space, seed), flaw, ledger: Ledger::new() }
}

#[test]
fn invalid_genomes_are_caught() {
    let e = check_valid_proposals(&factory(Flaw::InvalidGenome)).unwrap_err();
    assert!(e.contains("not in the space"), "{e}");
}

#[test]
fn double_tell_is_caught() {
    let e = check_errors(&factory(Flaw::AcceptsDoubleTell)).unwrap_err();
    assert!(e.contains("expected UnknownTrial") || e.contains("expected AlreadyTold"), "{e}");
}

#[test]
fn ignored_restore_is_caught() {
    let e = check_snapshot(&factory(Flaw::IgnoresRestore)).unwrap_err();
    assert!(e.contains("snapshot"), "{e}");
}

#[test]
fn nondeterminism_is_caught() {
    assert!(check_determinism(&factory(Flaw::Nondeterministic)).is_err());
}

#[test]
fn the_same_optimiser_without_flaws_passes() {
    let ok = |space, seed| RandomSearch::new(space, seed);
    danas_optim::conformance::run_all(&ok).unwrap();
}
