//! Behaviour of each strategy beyond the conformance suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use danas_optim::{
    AgingConfig, AgingEvolution, BayesConfig, BayesMode, Bayesian, Feasibility, Metrics, Nsga2, Nsga2Config, Objective,
    OptimError, Optimizer, Oracle, Outcome, PaperGa, PaperGaConfig, RandomSearch, Scalarization, by_name, names,
};
use danas_space::{Gene, GeneGroup, Genome, MbSpace, SearchSpace};

/// 6 ordinal genes of 5 choices: two per paper mutation group, no rules.
#[derive(Debug)]
struct Grid {
    genes: Vec<Gene>,
}

impl Grid {
    fn arc() -> Arc<dyn SearchSpace> {
        let g = |n: &str, group| Gene::ordinal(n, 5, group);
        Arc::new(Grid {
            genes: vec![
                g("d0", GeneGroup::Data),
                g("d1", GeneGroup::Data),
                g("p0", GeneGroup::Depth),
                g("p1", GeneGroup::Depth),
                g("w0", GeneGroup::Width),
                g("w1", GeneGroup::Width),
            ],
        })
    }
}

impl SearchSpace for Grid {
    fn name(&self) -> &str {
        "grid"
    }
    fn genes(&self) -> &[Gene] {
        &self.genes
    }
    fn cardinality(&self) -> u128 {
        5u128.pow(6)
    }
}

/// Every metric the scalarisations need; accuracy peaks at genes (3, 1, 4, 1, 2, 3).
fn smooth(g: &Genome) -> Outcome {
    let target = [3.0, 1.0, 4.0, 1.0, 2.0, 3.0];
    let d2: f64 = g.0.iter().zip(target).map(|(&v, t)| (f64::from(v) - t).powi(2)).sum();
    let acc = 0.95 - 0.01 * d2;
    let ram = 1000.0 * f64::from(g.0[0] + 1);
    Outcome::Complete(
        Metrics::new()
            .with(names::ACCURACY, acc)
            .with(names::PRECISION, acc)
            .with(names::RECALL, acc)
            .with(names::RAM, ram)
            .with(names::FLASH, 1000.0 * f64::from(g.0[4] + 1)),
    )
}

fn hamming(a: &Genome, b: &Genome) -> usize {
    a.0.iter().zip(&b.0).filter(|(x, y)| x != y).count()
}

#[test]
fn paper_ga_follows_the_paper_schedule() {
    let mut ga = PaperGa::new(Grid::arc(), 5);
    for p in ga.ask(10).unwrap() {
        ga.tell(p.id, smooth(&p.genome)).unwrap();
    }
    assert_eq!(ga.population().len(), 10);
    assert_eq!(ga.generation(), 0);
    let mut group_counts: BTreeMap<usize, usize> = BTreeMap::new();
    for generation in 0..60 {
        let before: Vec<Genome> = ga.population().iter().map(|m| m.genome.clone()).collect();
        let mut children = Vec::new();
        for _ in 0..5 {
            let p = ga.ask(1).unwrap().remove(0);
            children.push(p.genome.clone());
            ga.tell(p.id, smooth(&p.genome)).unwrap();
        }
        assert_eq!(ga.generation(), generation + 1);
        assert_eq!(ga.population().len(), 10);
        // 4 mutants: one gene away from a parent of the previous population
        for c in &children[..4] {
            let step1 =
                |b: &Genome| hamming(b, c) == 1 && (0..6).any(|i| (i32::from(b.0[i]) - i32::from(c.0[i])).abs() == 1);
            let parent = before.iter().find(|b| step1(b));
            let parent = parent
                .unwrap_or_else(|| panic!("generation {generation}: {c} is not a one-gene neighbour-step mutant"));
            let gene = (0..6).find(|&i| parent.0[i] != c.0[i]).unwrap();
            *group_counts.entry(gene / 2).or_default() += 1;
        }
        // 1 crossover: each gene from one of two parents (but for one mutated gene when
        // the parents were too alike to give a new genome)
        let c = &children[4];
        let off = |a: &Genome, b: &Genome| (0..6).filter(|&i| c.0[i] != a.0[i] && c.0[i] != b.0[i]).count();
        let ok = before.iter().any(|a| before.iter().any(|b| off(a, b) <= 1));
        assert!(ok, "generation {generation}: {c} is not a crossover of two members");
        // the new population is 5 survivors + the 5 children
        let now: Vec<Genome> = ga.population().iter().map(|m| m.genome.clone()).collect();
        assert_eq!(now.iter().filter(|g| children.contains(g)).count(), 5);
        assert_eq!(now.iter().filter(|g| before.contains(g)).count(), 5);
    }
    // group weights data 40 / depth 40 / width 20 over 240 mutants
    let total: usize = group_counts.values().sum();
    let share = |k| group_counts.get(&k).copied().unwrap_or(0) as f64 / total as f64;
    assert!((share(0) - 0.4).abs() < 0.1 && (share(1) - 0.4).abs() < 0.1 && (share(2) - 0.2).abs() < 0.08);
}

#[test]
fn paper_ga_keeps_population_with_large_batches() {
    let mut ga = PaperGa::new(Grid::arc(), 1);
    for _ in 0..6 {
        let props = ga.ask(12).unwrap();
        for p in props {
            ga.tell(p.id, smooth(&p.genome)).unwrap();
        }
        assert!(ga.population().len() <= 10);
    }
    assert_eq!(ga.population().len(), 10);
    assert!(ga.generation() >= 4);
}

#[test]
fn aging_evolution_removes_the_oldest() {
    let cfg = AgingConfig { population: 8, sample_size: 3, ..AgingConfig::default() };
    let mut ae = AgingEvolution::with_config(Grid::arc(), cfg, 2).unwrap();
    let mut told = Vec::new();
    for _ in 0..30 {
        let p = ae.ask(1).unwrap().remove(0);
        ae.tell(p.id, smooth(&p.genome)).unwrap();
        told.push(p.genome);
    }
    let pop: Vec<Genome> = ae.population().map(|m| m.genome.clone()).collect();
    assert_eq!(pop, told[22..].to_vec());
}

#[test]
fn nsga2_keeps_the_extremes_of_the_front() {
    let mut opt = Nsga2::new(Arc::new(MbSpace::paper()), 4);
    let mut best_acc = f64::NEG_INFINITY;
    let mut best_genome = None;
    for _ in 0..6 {
        for p in opt.ask(20).unwrap() {
            let o = danas_optim::conformance::mixed_outcome(&p.genome);
            if let Outcome::Complete(m) = &o {
                let acc = m.get(names::ACCURACY).unwrap();
                let feasible = m.get(names::RAM).unwrap() <= 512.0 * 1024.0
                    && m.get(names::FLASH).unwrap() <= 2.0 * 1024.0 * 1024.0;
                if feasible && acc > best_acc {
                    best_acc = acc;
                    best_genome = Some(p.genome.clone());
                }
            }
            opt.tell(p.id, o).unwrap();
        }
    }
    assert_eq!(opt.population().len(), 20);
    let best = best_genome.unwrap();
    assert!(opt.population().iter().any(|m| m.genome == best), "elitism lost the most accurate feasible point");
    assert!(opt.population().iter().all(|m| m.violation == 0.0), "infeasible members kept over feasible ones");
}

#[test]
fn bayesian_finds_the_peak_of_a_smooth_function() {
    let mut hits = 0;
    for seed in 0..5 {
        let cfg = BayesConfig {
            mode: BayesMode::Scalar(Scalarization::Constrained {
                objective: Objective::maximize(names::ACCURACY),
                limits: None,
            }),
            ..BayesConfig::default()
        };
        let mut bo = Bayesian::with_config(Grid::arc(), cfg, seed).unwrap();
        let mut best = f64::NEG_INFINITY;
        for _ in 0..40 {
            let p = bo.ask(1).unwrap().remove(0);
            let o = smooth(&p.genome);
            if let Outcome::Complete(m) = &o {
                best = best.max(m.get(names::ACCURACY).unwrap());
            }
            bo.tell(p.id, o).unwrap();
        }
        // the peak (0.95) or a neighbour of it, among 15 625 genomes in 40 evaluations
        if best >= 0.94 - 1e-12 {
            hits += 1;
        }
    }
    assert!(hits >= 4, "bayesian reached the peak region in {hits} of 5 seeds");
}

fn every_strategy(space: Arc<dyn SearchSpace>, seed: u64, oracle: Option<Oracle>) -> Vec<Box<dyn Optimizer>> {
    danas_optim::OptimizerKind::ALL.iter().map(|k| k.build(space.clone(), seed, oracle.clone())).collect()
}

#[test]
fn oracle_keeps_proposals_feasible() {
    let oracle: Oracle =
        Arc::new(
            |g: &Genome| if g.0[0].is_multiple_of(2) { Feasibility::Feasible } else { Feasibility::Infeasible(vec![]) },
        );
    for mut opt in every_strategy(Arc::new(MbSpace::paper()), 3, Some(oracle.clone())) {
        for _ in 0..10 {
            for p in opt.ask(4).unwrap() {
                assert!(oracle(&p.genome).is_feasible(), "{} proposed {}", opt.name(), p.genome);
                opt.tell(p.id, danas_optim::conformance::mixed_outcome(&p.genome)).unwrap();
            }
        }
    }
}

#[test]
fn invalid_settings_are_typed_errors() {
    let bad_ga = PaperGaConfig { population: 1, ..PaperGaConfig::default() };
    assert!(matches!(
        PaperGa::with_config(Grid::arc(), bad_ga, 0),
        Err(OptimError::InvalidConfig { ref field, .. }) if field == "population"
    ));
    let bad_t = PaperGaConfig { tournaments: 11, ..PaperGaConfig::default() };
    assert!(PaperGa::with_config(Grid::arc(), bad_t, 0).is_err());
    let bad_ae = AgingConfig { sample_size: 0, ..AgingConfig::default() };
    assert!(AgingEvolution::with_config(Grid::arc(), bad_ae, 0).is_err());
    let bad_ns = Nsga2Config { objectives: vec![], ..Nsga2Config::default() };
    assert!(Nsga2::with_config(Grid::arc(), bad_ns, 0).is_err());
    let bad_bo = BayesConfig { refit_every: 0, ..BayesConfig::default() };
    assert!(Bayesian::with_config(Grid::arc(), bad_bo, 0).is_err());
    let bad_lim = Scalarization::Paper { ram_limit: -1.0, flash_limit: 1.0 };
    assert!(
        PaperGa::with_config(Grid::arc(), PaperGaConfig { scalarization: bad_lim, ..PaperGaConfig::default() }, 0)
            .is_err()
    );
    assert!(matches!(by_name("simulated-annealing", Grid::arc(), 0, None), Err(OptimError::InvalidConfig { .. })));
}

#[test]
fn missing_metric_is_refused_without_consuming_the_trial() {
    let mut ga = PaperGa::new(Grid::arc(), 0);
    let p = ga.ask(1).unwrap().remove(0);
    let e = ga.tell(p.id, Outcome::Complete(Metrics::new().with(names::ACCURACY, 0.5))).unwrap_err();
    assert!(matches!(e, OptimError::MissingMetric { .. }), "{e}");
    // the trial is still pending and can be told properly
    ga.tell(p.id, smooth(&p.genome)).unwrap();
}

#[test]
fn random_covers_a_small_space_without_repeats() {
    let space = danas_optim::conformance::ToySpace::arc();
    let mut r = RandomSearch::new(space, 9);
    let props = r.ask(24).unwrap();
    let distinct: std::collections::BTreeSet<_> = props.iter().map(|p| p.genome.clone()).collect();
    assert_eq!(distinct.len(), 24);
}
