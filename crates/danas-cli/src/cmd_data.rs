//! `danas data …`: dataset tools.

use std::path::PathBuf;

use anyhow::Context;
use danas_core::Split;
use danas_data::{DataError, DataOptions, Dataset};

use crate::InputError;

/// Dataset tools.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(clap::Subcommand, Debug)]
enum DataCommand {
    /// Counts per split and class, image sizes, skipped files and cache status of a source.
    Inspect(InspectArgs),
}

/// Arguments of `danas data inspect`.
#[derive(clap::Args, Debug)]
struct InspectArgs {
    /// The source: idx:DIR, folder:DIR, wake-vision:DIR, audio:DIR, or synthetic[:N | :n=N,size=S,seed=K].
    source: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Cache directory (default: $DANAS_CACHE, else .cache/danas).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Decode up to this many images (evenly spread) to measure sizes and find bad files.
    #[arg(long, default_value_t = 1000)]
    sample: usize,
    /// Use at most this many training images.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Seed of the carved splits.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Largest tolerated fraction of unusable images.
    #[arg(long, default_value_t = 0.1)]
    max_bad_fraction: f64,
    /// Also build the train and validation caches for this resolution (decodes every image once).
    #[arg(long, value_name = "RESOLUTION")]
    prepare: Option<u32>,
}

fn classify(e: DataError) -> anyhow::Error {
    match e {
        DataError::Io { .. } | DataError::CacheFull { .. } | DataError::Resize { .. } => anyhow::Error::new(e),
        other => anyhow::Error::new(InputError(other.to_string())),
    }
}

/// Runs `danas data …`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Inspect(a) => inspect(a),
    }
}

fn inspect(a: InspectArgs) -> anyhow::Result<()> {
    if let Some(dir) = a.source.strip_prefix("audio:") {
        let opts = danas_data::audio::AudioOptions { seed: a.seed, ..Default::default() };
        let cat = danas_data::audio::AudioCatalog::open(std::path::Path::new(dir.trim()), &opts).map_err(classify)?;
        let report = cat.report();
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{report}");
        }
        return Ok(());
    }
    let mut o = DataOptions::default();
    if let Some(d) = a.cache_dir {
        o.cache_dir = d;
    }
    o.train_limit = a.train_limit;
    o.split_seed = a.seed;
    o.max_bad_fraction = a.max_bad_fraction;
    let ds = Dataset::from_spec(&a.source, o).map_err(classify)?;
    if let Some(r) = a.prepare {
        for split in [Split::Train, Split::Validation] {
            if !ds.split_records(split).is_empty() {
                ds.prepare(split, r).map_err(classify).with_context(|| format!("building the {split} cache"))?;
            }
        }
    }
    let report = danas_data::inspect(&ds, a.sample).map_err(classify)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    if !report.problems.is_empty() {
        return Err(InputError(format!("{} cannot serve a search: {}", a.source, report.problems.join("; "))).into());
    }
    Ok(())
}
