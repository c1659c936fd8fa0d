//! Candidates, blueprints and search spaces: the shared vocabulary of danas.
//!
//! Run with `cargo run --example 01_candidates`.

use danas::core::{Arch, Candidate, Color, DataConfig, Precision};
use danas::space::{CandidateSpace, MbSpace, SearchSpace};
use rand::SeedableRng;

fn main() -> anyhow::Result<()> {
    // A candidate: 96x96 grayscale input, MobileNetV2 alpha 0.35 cut after stage 5.
    let cand = Candidate::new(DataConfig::new(96, Color::Grayscale), Arch::mobilenet_v2(0.35, [3, 4, 3, 0, 0]));
    let bp = cand.blueprint(2)?;
    println!("candidate {cand}");
    println!(
        "  stem {} -> {} channels, {} blocks, last conv {:?}",
        bp.stem.in_ch,
        bp.stem.out_ch,
        bp.blocks.len(),
        bp.last_conv.map(|l| l.out_ch)
    );
    for (i, b) in bp.blocks.iter().enumerate().take(4) {
        println!(
            "  block {i} ({}): {} -> {:?} -> {} ch, stride {}, residual {}",
            b.label(),
            b.in_ch,
            b.expand_ch,
            b.out_ch,
            b.stride,
            b.residual
        );
    }
    println!("  params (BatchNorm folded) {}, MACs {}", bp.param_count(), bp.macs());
    let graph = bp.to_graph(Precision::Int8);
    println!("  IR: {} tensors, {} ops", graph.tensors.len(), graph.ops.len());

    // The paper's space, sampled with a seed.
    let space = MbSpace::paper();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    println!("space {}: {} candidates", space.name(), space.cardinality());
    let parent = space.sample(&mut rng);
    let child = space.mutate(&parent, &mut rng);
    for g in [&parent, &child] {
        println!("  genome {g} -> {}", space.candidate(g)?);
    }
    Ok(())
}
