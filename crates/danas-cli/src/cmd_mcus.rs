//! `danas mcus`: the built-in MCU catalogue, profiles as TOML templates, and
//! latency calibration from measurements.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use danas_cost::Profile;

use crate::InputError;

/// List the built-in MCU profiles; print one as TOML; or calibrate one's latency model.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print this built-in profile as TOML: a template for your own board
    /// (`danas mcus --toml nucleo-h743 > myboard.toml`, edit, then `--mcu myboard.toml`).
    #[arg(long, value_name = "NAME", conflicts_with = "calibrate")]
    pub toml: Option<String>,
    /// Print a commented profile template (sizes in KiB) for your own board, starting
    /// from this built-in profile (default nucleo-h743):
    /// `danas mcus --template nano33-ble > myboard.toml`.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "nucleo-h743", conflicts_with_all = ["calibrate", "toml"])]
    pub template: Option<String>,
    /// Fit the latency coefficients of `--mcu` to measurements in this CSV
    /// (header `model,ms`; `model` is a `.tflite` path relative to the CSV or a
    /// candidate `RES:COLOUR:ALPHA:D1-D2-D3-D4-D5[:CLASSES]`), print the fit error and
    /// write the calibrated profile with `--out`.
    #[arg(long, value_name = "CSV")]
    pub calibrate: Option<PathBuf>,
    /// What the calibration fits: `free` (every coefficient; needs about six or more
    /// varied measurements), `scale` (one factor over the profile: a faster or slower
    /// core, same kernel library), or `conv-fc` (one cycles/MAC for every convolution
    /// kind and one for fully connected layers: TFLM reference kernels).
    #[arg(long, value_enum, default_value_t = FitArg::Free)]
    pub fit: FitArg,
    /// The profile to calibrate: a built-in name or a TOML file.
    #[arg(long, default_value = "nucleo-h743")]
    pub mcu: String,
    /// Where to write the calibrated profile (TOML).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The calibrated profile's name (default: the file name of `--out` without
    /// `.toml`, or `MCU-calibrated`).
    #[arg(long, requires = "calibrate")]
    pub name: Option<String>,
}

/// `--fit`: what a latency calibration fits.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitArg {
    /// Every coefficient on its own (least squares on cycles).
    Free,
    /// One factor over the profile's coefficients.
    Scale,
    /// One cycles/MAC for all convolutions, one for fully connected layers.
    ConvFc,
}

/// A built-in profile by name, or a profile TOML file.
fn profile(spec: &str) -> Result<Profile> {
    Profile::resolve(spec).map_err(|e| InputError(format!("--mcu: {e}")).into())
}

/// Runs `danas mcus`.
pub fn run(args: Args) -> Result<()> {
    if let Some(name) = &args.toml {
        let p = Profile::builtin(name).map_err(|e| InputError(format!("--toml: {e}")))?;
        print!("{}", p.to_toml());
        return Ok(());
    }
    if let Some(name) = &args.template {
        let p = Profile::builtin(name).map_err(|e| InputError(format!("--template: {e}")))?;
        print!("{}", p.to_template());
        return Ok(());
    }
    if let Some(csv) = &args.calibrate {
        return calibrate(&args, csv);
    }
    let all = danas_cost::catalogue();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    println!(
        "{:<16} {:<40} {:<12} {:>8} {:>10} {:>10} {:<14}",
        "name", "board", "core", "MHz", "SRAM KiB", "flash KiB", "kernels"
    );
    for p in all {
        let kib = |b: u64| if b > 1 << 50 { "-".to_string() } else { (b / 1024).to_string() };
        println!(
            "{:<16} {:<40} {:<12} {:>8} {:>10} {:>10} {:<14}",
            p.name,
            p.board,
            p.core,
            p.clock_mhz,
            kib(p.sram_bytes),
            kib(p.flash_bytes),
            p.kernels.name()
        );
    }
    println!(
        "\nSRAM KiB is the whole SRAM; a search's RAM limit is the arena: the SRAM less a reserve \
         (an eighth, at least 16 KiB) unless the profile gives arena_kib."
    );
    println!("Your own board: `danas mcus --template NAME > board.toml`, edit it, then pass `--mcu board.toml`.");
    Ok(())
}

/// The calibrated profile's name: `--name`, else `--out`'s file stem, else `MCU-calibrated`.
fn calibrated_name(args: &Args, base: &Profile) -> String {
    if let Some(n) = args.name.as_ref().filter(|n| !n.trim().is_empty()) {
        return n.trim().to_string();
    }
    args.out
        .as_ref()
        .and_then(|o| o.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty() && *s != base.name)
        .unwrap_or_else(|| format!("{}-calibrated", base.name))
}

fn calibrate(args: &Args, csv: &Path) -> Result<()> {
    let base = profile(&args.mcu)?;
    let text = std::fs::read_to_string(csv).map_err(|e| InputError(format!("--calibrate {}: {e}", csv.display())))?;
    let dir = csv.parent().unwrap_or(Path::new("."));
    let samples = danas_cost::parse_calibration_csv(&text, &csv.display().to_string(), dir)
        .map_err(|e| InputError(e.to_string()))?;
    let how = match args.fit {
        FitArg::Free => danas_cost::Fit::Free,
        FitArg::Scale => danas_cost::Fit::Scale,
        FitArg::ConvFc => danas_cost::Fit::ConvFc,
    };
    let mut fit = danas_cost::calibrate_with(&base, &samples, how).map_err(|e| InputError(e.to_string()))?;
    fit.profile.name = calibrated_name(args, &base);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&fit)?);
    } else {
        println!("calibrated {} on {} measurements, as profile `{}`:", base.name, samples.len(), fit.profile.name);
        println!("{:<48} {:>12} {:>12} {:>8}", "model", "measured ms", "fitted ms", "error");
        for (s, p) in samples.iter().zip(&fit.predicted_ms) {
            let rel = if s.measured_ms > 0.0 { (p - s.measured_ms) / s.measured_ms * 100.0 } else { f64::NAN };
            println!("{:<48} {:>12.3} {:>12.3} {:>7.1}%", s.label, s.measured_ms, p, rel);
        }
        println!("fit error: RMSE {:.3} ms, largest relative error {:.1}%", fit.rmse_ms, fit.max_rel_error * 100.0);
        if !fit.kept.is_empty() {
            println!("kept at the profile's values: {}", fit.kept.join(", "));
        }
        if args.fit == FitArg::Free && samples.len() < 6 {
            println!(
                "note: {} measurements for six coefficients; `--fit scale` or `--fit conv-fc` tie them (see README)",
                samples.len()
            );
        }
        let c = &fit.profile.cycles_per_mac;
        println!(
            "cycles/MAC: 1x1 {:.3}, kxk {:.3}, depthwise {:.3}, fc {:.3}; per-op cycles {:.0}",
            c.conv1x1, c.conv, c.depthwise, c.fc, fit.profile.per_op_cycles
        );
    }
    if let Some(out) = &args.out {
        std::fs::write(out, fit.profile.to_toml()).with_context(|| format!("cannot write {}", out.display()))?;
        if !args.json {
            println!("calibrated profile written to {}", out.display());
        }
    }
    Ok(())
}
