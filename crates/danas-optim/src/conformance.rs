//! The conformance suite every optimiser must pass, as plain functions (callable
//! from anywhere, e.g. an example's `main`) and as the
//! [`optimizer_conformance!`](crate::optimizer_conformance) macro that wraps each
//! in a `#[test]`.
//!
//! Each check takes a factory `Fn(space, seed) -> optimiser` and returns
//! `Err(message)` on the first violation. They run on three spaces: the paper's
//! MobileNetV2 space, the small `demo` space (with depth-repair rules) and
//! [`ToySpace`], a 24-member space that is not about networks at all (and that
//! gets exhausted, so optimisers must cope with repeats).

use std::sync::Arc;

use danas_space::{Gene, GeneGroup, Genome, MbSpace, SearchSpace};

use crate::{Journal, Metrics, OptimError, Optimizer, Outcome, Proposal, TrialId, Violation, names, replay};

/// A tiny non-network space: 3 × 4 × 2 genes (ordinal, categorical, ordinal).
#[derive(Debug, Clone)]
pub struct ToySpace {
    genes: Vec<Gene>,
}

impl ToySpace {
    /// The toy space.
    pub fn new() -> Self {
        Self {
            genes: vec![
                Gene::ordinal("x", 3, GeneGroup::Data),
                Gene::categorical("kind", 4, GeneGroup::Width),
                Gene::ordinal("y", 2, GeneGroup::Depth),
            ],
        }
    }

    /// The toy space behind an `Arc`.
    pub fn arc() -> Arc<dyn SearchSpace> {
        Arc::new(Self::new())
    }
}

impl Default for ToySpace {
    fn default() -> Self {
        Self::new()
    }
}

impl SearchSpace for ToySpace {
    fn name(&self) -> &str {
        "toy"
    }
    fn genes(&self) -> &[Gene] {
        &self.genes
    }
    fn cardinality(&self) -> u128 {
        24
    }
}

/// A space with no member (a gene with zero choices).
#[derive(Debug, Clone)]
pub struct EmptySpace {
    genes: Vec<Gene>,
}

impl EmptySpace {
    /// The empty space.
    pub fn arc() -> Arc<dyn SearchSpace> {
        Arc::new(Self { genes: vec![Gene::ordinal("nothing", 0, GeneGroup::Other)] })
    }
}

impl SearchSpace for EmptySpace {
    fn name(&self) -> &str {
        "empty"
    }
    fn genes(&self) -> &[Gene] {
        &self.genes
    }
    fn cardinality(&self) -> u128 {
        0
    }
}

/// The spaces the suite runs on.
pub fn spaces() -> Vec<Arc<dyn SearchSpace>> {
    vec![Arc::new(MbSpace::paper()), Arc::new(MbSpace::demo()), ToySpace::arc()]
}

fn hash(g: &Genome) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &v in &g.0 {
        h ^= u64::from(v) + 1;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h ^ (h >> 29)
}

/// A deterministic test evaluator: about 1 in 7 trials fails, 1 in 5 is infeasible,
/// the rest complete with every metric the built-in scalarisations need.
pub fn mixed_outcome(g: &Genome) -> Outcome {
    let h = hash(g);
    if h.is_multiple_of(7) {
        return Outcome::Failed("simulated crash".into());
    }
    if h.is_multiple_of(5) {
        return Outcome::Infeasible(vec![Violation {
            metric: names::RAM.into(),
            value: 600.0 * 1024.0,
            limit: 512.0 * 1024.0,
        }]);
    }
    let sum: f64 = g.0.iter().map(|&v| f64::from(v)).sum();
    let acc = 0.5 + 0.4 * (1.0 - (-sum / 8.0).exp()) + 0.01 * ((h % 100) as f64 / 100.0);
    Outcome::Complete(
        Metrics::new()
            .with(names::ACCURACY, acc)
            .with(names::PRECISION, acc)
            .with(names::RECALL, acc)
            .with(names::RAM, ((h >> 8) % 800) as f64 * 1024.0)
            .with(names::FLASH, ((h >> 20) % 3000) as f64 * 1024.0)
            .with(names::LATENCY, ((h >> 32) % 500) as f64),
    )
}

const BATCHES: [usize; 5] = [1, 3, 2, 5, 1];

fn err(space: &dyn SearchSpace, what: impl std::fmt::Display) -> String {
    format!("[space {}] {what}", space.name())
}

/// Runs `trials` evaluations in batches of 1, 3, 2, 5, 1, …, telling every outcome
/// of `eval`, optionally through a journal. Checks every proposal is valid and every
/// ask returns exactly what was asked. Returns all proposals.
///
/// # Errors
/// A message naming the space and the broken rule.
pub fn drive(
    opt: &mut dyn Optimizer,
    mut journal: Option<&mut Journal>,
    trials: usize,
    eval: &dyn Fn(&Genome) -> Outcome,
) -> Result<Vec<Proposal>, String> {
    let mut all: Vec<Proposal> = Vec::new();
    let mut i = 0;
    while all.len() < trials {
        let n = BATCHES[i % BATCHES.len()].min(trials - all.len());
        i += 1;
        let props = match journal.as_deref_mut() {
            Some(j) => j.ask(opt, n),
            None => opt.ask(n),
        }
        .map_err(|e| err(opt.space(), format!("ask({n}) failed: {e}")))?;
        if props.len() != n {
            return Err(err(opt.space(), format!("ask({n}) returned {} proposals", props.len())));
        }
        for p in &props {
            opt.space()
                .validate(&p.genome)
                .map_err(|e| err(opt.space(), format!("proposal {} is not in the space: {e}", p.id)))?;
            if all.iter().any(|q| q.id == p.id) {
                return Err(err(opt.space(), format!("trial id {} was handed out twice", p.id)));
            }
        }
        for p in &props {
            let o = eval(&p.genome);
            match journal.as_deref_mut() {
                Some(j) => j.tell(opt, p.id, o),
                None => opt.tell(p.id, o),
            }
            .map_err(|e| err(opt.space(), format!("tell({}) failed: {e}", p.id)))?;
        }
        all.extend(props);
    }
    Ok(all)
}

/// Proposals are valid members of every test space, ids are unique, `ask(n)` gives `n`.
///
/// # Errors
/// A message naming the space and the broken rule.
pub fn check_valid_proposals<O: Optimizer>(factory: &dyn Fn(Arc<dyn SearchSpace>, u64) -> O) -> Result<(), String> {
    for space in spaces() {
        let mut opt = factory(space.clone(), 1);
        drive(&mut opt, None, 40, &mixed_outcome)?;
        if !opt.ask(0).map_err(|e| err(space.as_ref(), e))?.is_empty() {
            return Err(err(space.as_ref(), "ask(0) returned proposals"));
        }
    }
    Ok(())
}

/// The same seed gives the same trajectory.
///
/// # Errors
/// A message naming the space and the first difference.
pub fn check_determinism<O: Optimizer>(factory: &dyn Fn(Arc<dyn SearchSpace>, u64) -> O) -> Result<(), String> {
    for space in spaces() {
        let a = drive(&mut factory(space.clone(), 7), None, 45, &mixed_outcome)?;
        let b = drive(&mut factory(space.clone(), 7), None, 45, &mixed_outcome)?;
        if let Some(k) = (0..a.len()).find(|&k| a[k] != b[k]) {
            return Err(err(
                space.as_ref(),
                format!("same seed, different proposal {k}: {} vs {}", a[k].genome, b[k].genome),
            ));
        }
    }
    Ok(())
}

/// Infeasible and failed outcomes never stall the optimiser: it keeps proposing
/// when everything fails, when everything is infeasible, and after the space is
/// exhausted.
///
/// # Errors
/// A message naming the space and what stalled.
pub fn check_no_stall<O: Optimizer>(factory: &dyn Fn(Arc<dyn SearchSpace>, u64) -> O) -> Result<(), String> {
    let failing = |_: &Genome| Outcome::Failed("always fails".into());
    let infeasible =
        |_: &Genome| Outcome::Infeasible(vec![Violation { metric: names::FLASH.into(), value: 3e6, limit: 2e6 }]);
    for space in spaces() {
        drive(&mut factory(space.clone(), 2), None, 30, &failing)?;
        drive(&mut factory(space.clone(), 3), None, 30, &infeasible)?;
        drive(&mut factory(space.clone(), 4), None, 60, &mixed_outcome)?;
    }
    // pending trials never told must not block asks either
    let mut opt = factory(ToySpace::arc(), 5);
    for _ in 0..10 {
        let p = opt.ask(3).map_err(|e| format!("ask with untold trials failed: {e}"))?;
        if p.len() != 3 {
            return Err(format!("ask(3) with untold trials returned {}", p.len()));
        }
    }
    Ok(())
}

/// Bad input gives typed errors: an unknown trial id, telling twice, asking on an empty space.
///
/// # Errors
/// A message naming the case that did not give the right error.
pub fn check_errors<O: Optimizer>(factory: &dyn Fn(Arc<dyn SearchSpace>, u64) -> O) -> Result<(), String> {
    let mut opt = factory(ToySpace::arc(), 1);
    match opt.tell(TrialId(12345), Outcome::Failed("x".into())) {
        Err(OptimError::UnknownTrial { .. }) => {}
        other => return Err(format!("telling an unknown id gave {other:?}, expected UnknownTrial")),
    }
    let p = opt.ask(2).map_err(|e| e.to_string())?;
    opt.tell(p[0].id, mixed_outcome(&p[0].genome)).map_err(|e| e.to_string())?;
    match opt.tell(p[0].id, mixed_outcome(&p[0].genome)) {
        Err(OptimError::AlreadyTold { .. }) => {}
        other => return Err(format!("telling twice gave {other:?}, expected AlreadyTold")),
    }
    // the optimiser still works after the errors
    opt.tell(p[1].id, mixed_outcome(&p[1].genome)).map_err(|e| format!("tell after errors failed: {e}"))?;
    let mut empty = factory(EmptySpace::arc(), 1);
    match empty.ask(1) {
        Err(OptimError::EmptySpace { .. }) => {}
        other => return Err(format!("asking on an empty space gave {other:?}, expected EmptySpace")),
    }
    Ok(())
}

/// Leaves a half-told batch: drives 23 trials, asks 3 more, tells the first.
fn half_told(opt: &mut dyn Optimizer, journal: Option<&mut Journal>) -> Result<Vec<Proposal>, String> {
    let mut journal = journal;
    drive(opt, journal.as_deref_mut(), 23, &mixed_outcome)?;
    let p = match journal.as_deref_mut() {
        Some(j) => j.ask(opt, 3),
        None => opt.ask(3),
    }
    .map_err(|e| e.to_string())?;
    let o = mixed_outcome(&p[0].genome);
    match journal {
        Some(j) => j.tell(opt, p[0].id, o),
        None => opt.tell(p[0].id, o),
    }
    .map_err(|e| e.to_string())?;
    Ok(p[1..].to_vec())
}

fn continue_both(a: &mut dyn Optimizer, b: &mut dyn Optimizer, pending: &[Proposal], what: &str) -> Result<(), String> {
    for p in pending {
        a.tell(p.id, mixed_outcome(&p.genome)).map_err(|e| format!("{what}: original: {e}"))?;
        b.tell(p.id, mixed_outcome(&p.genome)).map_err(|e| format!("{what}: resumed: {e}"))?;
    }
    let x = drive(a, None, 17, &mixed_outcome)?;
    let y = drive(b, None, 17, &mixed_outcome)?;
    if let Some(k) = (0..x.len()).find(|&k| x[k] != y[k]) {
        return Err(err(
            a.space(),
            format!("{what}: proposal {k} after resuming differs: {} vs {}", x[k].genome, y[k].genome),
        ));
    }
    Ok(())
}

/// A snapshot, written to JSON text and read back into an optimiser built with a
/// different seed, continues exactly like the original (pending trials included).
///
/// # Errors
/// A message naming the space and the first difference.
pub fn check_snapshot<O: Optimizer>(factory: &dyn Fn(Arc<dyn SearchSpace>, u64) -> O) -> Result<(), String> {
    for space in spaces() {
        let mut a = factory(space.clone(), 3);
        let pending = half_told(&mut a, None)?;
        let text = a.snapshot().map_err(|e| e.to_string())?.to_string();
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("snapshot JSON: {e}"))?;
        let mut b = factory(space.clone(), 999);
        b.restore(value).map_err(|e| err(space.as_ref(), format!("restore failed: {e}")))?;
        continue_both(&mut a, &mut b, &pending, "snapshot")?;
    }
    // a snapshot of another space is refused with a typed error
    let a = factory(ToySpace::arc(), 1);
    let mut b = factory(Arc::new(MbSpace::demo()), 1);
    match b.restore(a.snapshot().map_err(|e| e.to_string())?) {
        Err(OptimError::Snapshot { .. }) => Ok(()),
        other => Err(format!("restoring a snapshot of another space gave {other:?}, expected Snapshot error")),
    }
}

/// Replaying a journal on a fresh optimiser (same seed) rebuilds its state: the
/// replay reproduces every recorded ask and the next proposals match.
///
/// # Errors
/// A message naming the space and the first difference.
pub fn check_replay<O: Optimizer>(factory: &dyn Fn(Arc<dyn SearchSpace>, u64) -> O) -> Result<(), String> {
    for space in spaces() {
        let mut a = factory(space.clone(), 11);
        let mut journal = Journal::new();
        let pending = half_told(&mut a, Some(&mut journal))?;
        // the journal survives a JSON round trip
        let text = serde_json::to_string(&journal).map_err(|e| e.to_string())?;
        let journal: Journal = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let mut b = factory(space.clone(), 11);
        replay(&mut b, &journal).map_err(|e| err(space.as_ref(), format!("replay failed: {e}")))?;
        continue_both(&mut a, &mut b, &pending, "replay")?;
    }
    Ok(())
}

/// Compile-time check that an optimiser is `Send` (it is, as `Optimizer: Send`).
pub fn check_send<O: Optimizer + Send>(_factory: &dyn Fn(Arc<dyn SearchSpace>, u64) -> O) -> Result<(), String> {
    fn send<T: Send>() {}
    send::<O>();
    send::<Box<dyn Optimizer>>();
    Ok(())
}

/// Every check, in order; stops at the first failure.
///
/// # Errors
/// The first failing check's message, prefixed with its name.
pub fn run_all<O: Optimizer>(factory: &dyn Fn(Arc<dyn SearchSpace>, u64) -> O) -> Result<(), String> {
    type Check<O> = fn(&dyn Fn(Arc<dyn SearchSpace>, u64) -> O) -> Result<(), String>;
    let checks: [(&str, Check<O>); 7] = [
        ("valid_proposals", check_valid_proposals),
        ("determinism", check_determinism),
        ("no_stall", check_no_stall),
        ("errors", check_errors),
        ("snapshot", check_snapshot),
        ("replay", check_replay),
        ("send", check_send),
    ];
    for (name, check) in checks {
        check(factory).map_err(|e| format!("conformance check {name}: {e}"))?;
    }
    Ok(())
}

/// Generates a test module running the whole conformance suite on an optimiser.
///
/// `optimizer_conformance!(module_name, |space, seed| MyOptimizer::new(space, seed));`
/// expands to `mod module_name` with one `#[test]` per check of
/// [`crate::conformance`].
#[macro_export]
macro_rules! optimizer_conformance {
    ($name:ident, $factory:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn valid_proposals() {
                if let Err(e) = $crate::conformance::check_valid_proposals(&$factory) {
                    panic!("{e}");
                }
            }
            #[test]
            fn determinism() {
                if let Err(e) = $crate::conformance::check_determinism(&$factory) {
                    panic!("{e}");
                }
            }
            #[test]
            fn no_stall() {
                if let Err(e) = $crate::conformance::check_no_stall(&$factory) {
                    panic!("{e}");
                }
            }
            #[test]
            fn typed_errors() {
                if let Err(e) = $crate::conformance::check_errors(&$factory) {
                    panic!("{e}");
                }
            }
            #[test]
            fn snapshot_roundtrip() {
                if let Err(e) = $crate::conformance::check_snapshot(&$factory) {
                    panic!("{e}");
                }
            }
            #[test]
            fn replay_resumes() {
                if let Err(e) = $crate::conformance::check_replay(&$factory) {
                    panic!("{e}");
                }
            }
            #[test]
            fn is_send() {
                if let Err(e) = $crate::conformance::check_send(&$factory) {
                    panic!("{e}");
                }
            }
        }
    };
}
