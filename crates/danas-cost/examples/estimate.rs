//! Estimate a candidate and a `.tflite` model with `danas-cost` alone (no deep-learning stack).
//!
//! ```text
//! cargo run -p danas-cost --example estimate                 # a candidate + a committed model
//! cargo run -p danas-cost --example estimate -- a.tflite ... # your own models (host profile)
//! ```

use std::path::{Path, PathBuf};

use danas_core::{Arch, Candidate, Color, DataConfig, Precision};
use danas_cost::{Profile, estimate_candidate, estimate_tflite, read_tflite_file};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if !args.is_empty() {
        let host = Profile::builtin("host")?;
        for path in args {
            let cost = estimate_tflite(&read_tflite_file(&path)?, &host)?;
            println!(
                "{}: head {} B, live bound {} B, in-place {} B, tail ~{} B, MACs {}, not estimated {:?}",
                path.display(),
                cost.tflm_head_bytes,
                cost.live_bound_bytes,
                cost.inplace_peak_bytes,
                cost.tail_bytes,
                cost.macs,
                cost.not_estimated
            );
        }
        return Ok(());
    }
    let mcu = Profile::builtin("nucleo-h743")?;
    let cand = Candidate::new(DataConfig::new(96, Color::Rgb), Arch::mobilenet_v2(0.35, [3, 4, 3, 3, 1]));
    let cost = estimate_candidate(&cand, 2, &mcu, Precision::Int8)?;
    let verdict = cost.check(&mcu.limits());
    println!("candidate {cand} on {}:", mcu.name);
    println!(
        "  {} MACs, {} params, flash {} B, TFLM head {} B, arena {} B, in-place {} B, {:.1} ms, fits: {}",
        cost.macs,
        cost.params,
        cost.flash_bytes,
        cost.tflm_head_bytes,
        cost.arena_bytes,
        cost.inplace_peak_bytes,
        cost.latency_ms,
        verdict.is_feasible()
    );
    if let Some(peak) = cost.peak_layer.and_then(|i| cost.layers.get(i)) {
        println!("  peak RAM at layer {} ({} live bytes)", peak.name, peak.live_bytes);
    }
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/m96_gray_a035_d34300.tflite");
    let cost = estimate_tflite(&read_tflite_file(&model)?, &mcu)?;
    println!("{} on {}:", model.display(), mcu.name);
    println!(
        "  {} MACs, model {} B, TFLM head {} B, arena {} B, {:.1} ms",
        cost.macs, cost.model_bytes, cost.tflm_head_bytes, cost.arena_bytes, cost.latency_ms
    );
    Ok(())
}
