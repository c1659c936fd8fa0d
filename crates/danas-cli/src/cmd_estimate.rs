//! `danas estimate`: the cost of a candidate or of an existing `.tflite` model on an MCU.

use std::path::PathBuf;

use anyhow::Result;
use danas_core::{Arch, Candidate, Color, DataConfig, Precision};
use danas_cost::{Cost, Feasibility, Profile};

use crate::InputError;

/// Estimate MACs, params, flash, the exact TFLM arena and latency of a candidate or a `.tflite` model.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A `.tflite` model to estimate, instead of a candidate given by --res/--color/--alpha/--depths.
    pub model: Option<PathBuf>,
    /// Input resolution in pixels (candidate).
    #[arg(long)]
    pub res: Option<u32>,
    /// Colour encoding, rgb or grayscale (candidate).
    #[arg(long)]
    pub color: Option<String>,
    /// Width multiplier α > 0 (candidate).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Depths of stages 3-7, e.g. 3,4,3,3,1 (candidate).
    #[arg(long, value_delimiter = ',')]
    pub depths: Option<Vec<u32>>,
    /// Number of classes (candidate).
    #[arg(long, default_value_t = 2)]
    pub classes: u32,
    /// MCU from the catalogue (see `danas mcus`) or a profile TOML file.
    #[arg(long, default_value = "nucleo-h743")]
    pub mcu: String,
    /// A profile TOML file, instead of --mcu.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Precision of the deployed candidate: int8, f16 or f32.
    #[arg(long, default_value = "int8")]
    pub precision: String,
    /// Latency limit in ms for the feasibility check.
    #[arg(long)]
    pub max_latency_ms: Option<f64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(msg.into()))
}

fn profile(args: &Args) -> Result<Profile> {
    let mut p = match &args.profile {
        Some(path) => Profile::from_toml_file(path).map_err(|e| input(e.to_string()))?,
        None => Profile::resolve(&args.mcu).map_err(|e| input(e.to_string()))?,
    };
    if let Some(l) = args.max_latency_ms {
        if !(l.is_finite() && l > 0.0) {
            return Err(input(format!("--max-latency-ms {l} must be a number > 0")));
        }
        p.max_latency_ms = Some(l);
    }
    Ok(p)
}

/// Runs `danas estimate`.
pub fn run(args: Args) -> Result<()> {
    let prof = profile(&args)?;
    let (what, cost, paper) = match &args.model {
        Some(path) => {
            if args.res.is_some() || args.alpha.is_some() || args.depths.is_some() || args.color.is_some() {
                return Err(input("give either a MODEL.tflite or --res/--color/--alpha/--depths, not both"));
            }
            let m = danas_cost::read_tflite_file(path).map_err(|e| input(e.to_string()))?;
            (path.display().to_string(), danas_cost::estimate_tflite(&m, &prof)?, None)
        }
        None => {
            let (Some(res), Some(alpha), Some(depths)) = (args.res, args.alpha, args.depths.clone()) else {
                return Err(input(
                    "give a MODEL.tflite, or a candidate with --res, --alpha and --depths (and --color)",
                ));
            };
            let color: Color = args
                .color
                .as_deref()
                .unwrap_or("rgb")
                .parse()
                .map_err(|e: danas_core::CoreError| input(e.to_string()))?;
            let precision: Precision =
                args.precision.parse().map_err(|e: danas_core::CoreError| input(e.to_string()))?;
            let arch = Arch { depths, ..Arch::mobilenet_v2(alpha, [0; 5]) };
            let cand = Candidate::new(DataConfig::new(res, color), arch);
            let cost = danas_cost::estimate_candidate(&cand, args.classes, &prof, precision).map_err(|e| match e {
                danas_cost::CostError::Candidate(_) => input(e.to_string()),
                other => anyhow::Error::new(other),
            })?;
            let paper = danas_cost::paper_estimate(&cand, args.classes, 1.0).ok();
            (format!("{cand} classes={} {precision}", args.classes), cost, paper)
        }
    };
    let verdict = cost.check(&prof.limits());
    if args.json {
        let mut j = json(&what, &prof, &cost, &verdict);
        if let (Some(p), Some(obj)) = (paper, j.as_object_mut()) {
            obj.insert("paper_ram_bytes".into(), p.ram_bytes.into());
            obj.insert("paper_flash_bytes".into(), p.flash_bytes.into());
        }
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        print_text(&what, &prof, &cost, &verdict);
        if let Some(p) = paper {
            println!(
                "  (the paper's formulas would say RAM {}, flash {}: linear in α, no planner, no runtime)",
                kib(p.ram_bytes),
                kib(p.flash_bytes)
            );
        }
    }
    Ok(())
}

fn json(what: &str, p: &Profile, c: &Cost, f: &Feasibility) -> serde_json::Value {
    serde_json::json!({
        "model": what,
        "mcu": p.name,
        "macs": c.macs,
        "params": c.params,
        "model_bytes": c.model_bytes,
        "flash_bytes": c.flash_bytes,
        "tflm_head_bytes": c.tflm_head_bytes,
        "tail_bytes": c.tail_bytes,
        "scratch_bytes": c.scratch_bytes,
        "arena_bytes": c.arena_bytes,
        "live_bound_bytes": c.live_bound_bytes,
        "inplace_peak_bytes": c.inplace_peak_bytes,
        "inplace_live_bound_bytes": c.inplace_live_bound_bytes,
        "latency_ms": c.latency_ms,
        "fits": f.is_feasible(),
        "violations": f.violations(),
        "peak_layer": c.peak_layer.and_then(|i| c.layers.get(i)).map(|l| l.name.clone()),
        "not_estimated": c.not_estimated,
        "layers": c.layers,
    })
}

fn kib(b: u64) -> String {
    format!("{:.1} KiB", b as f64 / 1024.0)
}

fn print_text(what: &str, p: &Profile, c: &Cost, f: &Feasibility) {
    println!("{what} on {} ({}, {} MHz, {})", p.name, p.core, p.clock_mhz, p.kernels.name());
    println!("  MACs              {:>14}", c.macs);
    println!("  params            {:>14}", c.params);
    println!("  model             {:>14}   flash (model + runtime) {}", kib(c.model_bytes), kib(c.flash_bytes));
    println!(
        "  TFLM arena head   {:>14}   ({} B, scratch {} B)",
        kib(c.tflm_head_bytes),
        c.tflm_head_bytes,
        c.scratch_bytes
    );
    println!("  arena tail (est.) {:>14}   arena = head + tail = {}", kib(c.tail_bytes), kib(c.arena_bytes));
    println!("  live-set bound    {:>14}", kib(c.live_bound_bytes));
    println!(
        "  in-place planner  {:>14}   (live bound {}; TFLM head {})",
        kib(c.inplace_peak_bytes),
        kib(c.inplace_live_bound_bytes),
        kib(c.tflm_head_bytes)
    );
    println!("  latency (est.)    {:>11.2} ms", c.latency_ms);
    if !c.not_estimated.is_empty() {
        println!("  not estimated (MACs/latency unknown): {}", c.not_estimated.join(", "));
    }
    println!();
    println!("  {:<4} {:<28} {:<18} {:>12} {:>10} {:>12} {:>9}", "#", "layer", "op", "MACs", "params", "live B", "ms");
    for (i, l) in c.layers.iter().enumerate() {
        let mark = if Some(i) == c.peak_layer { " <- peak" } else { "" };
        let name: String = l.name.chars().take(28).collect();
        let macs = if l.estimated { l.macs.to_string() } else { "n/a".into() };
        println!(
            "  {:<4} {:<28} {:<18} {:>12} {:>10} {:>12} {:>9.3}{mark}",
            i, name, l.op, macs, l.params, l.live_bytes, l.latency_ms
        );
    }
    println!();
    let lat = p.max_latency_ms.map_or(String::new(), |l| format!(", latency {l} ms"));
    println!("  limits: RAM {} ({}), flash {}{lat}", kib(p.arena_budget()), p.arena_note(), kib(p.flash_bytes));
    if f.is_feasible() {
        println!("  fits: yes");
    } else {
        println!("  fits: NO");
        for v in f.violations() {
            println!("    - {v}");
        }
    }
}
