//! `danas spaces`: list the built-in search spaces.

use danas_space::{MbSpace, SearchSpace};
use serde::Serialize;

/// Arguments of `danas spaces`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Row {
    name: String,
    description: String,
    data_configs: usize,
    depth_tuples: u128,
    genes: usize,
    cardinality: u128,
    resolutions: Vec<u32>,
    colors: Vec<String>,
    alphas: Vec<f64>,
}

/// Runs `danas spaces`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let rows: Vec<Row> = MbSpace::presets()
        .iter()
        .map(|s| Row {
            name: s.name().to_string(),
            description: s.description().to_string(),
            data_configs: s.num_data_configs(),
            depth_tuples: s.num_depth_tuples(),
            genes: s.genes().len(),
            cardinality: s.cardinality(),
            resolutions: s.config().resolutions.clone(),
            colors: s.config().colors.iter().map(|c| c.to_string()).collect(),
            alphas: s.config().alphas.clone(),
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<10} {:>12} {:>12} {:>22}  description", "space", "data configs", "depth tuples", "candidates");
    for r in &rows {
        println!(
            "{:<10} {:>12} {:>12} {:>22}  {}",
            r.name,
            r.data_configs,
            r.depth_tuples,
            group_thousands(r.cardinality),
            r.description
        );
    }
    Ok(())
}

fn group_thousands(n: u128) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands() {
        assert_eq!(super::group_thousands(37520), "37,520");
        assert_eq!(super::group_thousands(100), "100");
        assert_eq!(super::group_thousands(1234567), "1,234,567");
    }
}
