//! `danas spaces`: list the built-in search spaces.

/// Arguments of `danas spaces`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `danas spaces`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("not yet wired")
}
