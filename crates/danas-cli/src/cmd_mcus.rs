//! `danas mcus`: the built-in MCU catalogue.

use anyhow::Result;

/// List the built-in MCU profiles.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `danas mcus`.
pub fn run(args: Args) -> Result<()> {
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
    Ok(())
}
