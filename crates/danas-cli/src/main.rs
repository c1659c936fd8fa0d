//! `danas`: data-aware neural architecture search for TinyML, from the command line.
//!
//! Exit codes: 0 success, 1 the work failed, 2 bad input (arguments, files, configs).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_spaces;

/// Data-aware neural architecture search for TinyML.
#[derive(Parser, Debug)]
#[command(name = "danas", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the built-in search spaces with their sizes.
    Spaces(cmd_spaces::Args),
}

/// An error caused by the user's input (exit code 2) rather than by the work itself.
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Spaces(a) => cmd_spaces::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.chain().any(|c| c.is::<InputError>()) { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}
