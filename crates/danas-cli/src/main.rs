//! `danas`: data-aware neural architecture search for TinyML, from the command line.
//!
//! Exit codes: 0 success, 1 the work failed, 2 bad input (arguments, files, configs).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_data;
mod cmd_estimate;
mod cmd_export;
mod cmd_fidelity;
mod cmd_mcus;
mod cmd_optim;
mod cmd_search;
mod cmd_spaces;
mod cmd_train;
mod settings;

/// Data-aware neural architecture search for TinyML.
#[derive(Parser, Debug)]
#[command(name = "danas", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Search data configuration and network jointly under a board's limits (the main command).
    Search(cmd_search::Args),
    /// Continue an interrupted search: `danas resume DIR`.
    Resume(cmd_search::ResumeArgs),
    /// Re-render a study's tables, plots and report: `danas report DIR`.
    Report(cmd_search::ReportArgs),
    /// Work for a shared PostgreSQL study: `danas worker --storage URL --study NAME`.
    Worker(cmd_search::WorkerArgs),
    /// List the built-in search spaces with their sizes.
    Spaces(cmd_spaces::Args),
    /// Dataset tools: `danas data inspect SOURCE [--json]`.
    Data(cmd_data::Args),
    /// Estimate MACs, params, flash, the exact TFLM arena and latency of a candidate or a .tflite model.
    Estimate(cmd_estimate::Args),
    /// List the built-in MCU profiles.
    Mcus(cmd_mcus::Args),
    /// Optimiser tools: `danas optim bench` compares the search strategies on a synthetic landscape.
    Optim(cmd_optim::Args),
    /// Train one candidate network and report its validation (and test) metrics.
    Train(cmd_train::Args),
    /// Export a trained network as a deployable int8 TFLite model (and C array, manifest).
    Export(cmd_export::Args),
    /// Compare supernet evaluation with from-scratch training on sampled candidates (rank correlation, speed-up).
    Fidelity(cmd_fidelity::Args),
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

/// A reader that closed the pipe early (`danas estimate … | head`) ends the program
/// quietly with the shell's SIGPIPE status, instead of a panic from `println!`.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
        if msg.is_some_and(|m| m.contains("failed printing to stdout") && m.contains("Broken pipe")) {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    // The training device (`DANAS_DEVICE`: cpu, cuda, wgpu) is checked before any work.
    let trains = matches!(
        cli.command,
        Command::Search(_) | Command::Resume(_) | Command::Train(_) | Command::Fidelity(_) | Command::Worker(_)
    );
    if trains && let Err(e) = danas_train::select_device(None) {
        eprintln!("error: DANAS_DEVICE: {e}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Search(a) => cmd_search::run(a),
        Command::Resume(a) => cmd_search::resume(a),
        Command::Report(a) => cmd_search::report(a),
        Command::Worker(a) => cmd_search::worker(a),
        Command::Spaces(a) => cmd_spaces::run(a),
        Command::Data(a) => cmd_data::run(a),
        Command::Estimate(a) => cmd_estimate::run(a),
        Command::Export(a) => cmd_export::run(a),
        Command::Mcus(a) => cmd_mcus::run(a),
        Command::Optim(a) => cmd_optim::run(a),
        Command::Train(a) => cmd_train::run(a),
        Command::Fidelity(a) => cmd_fidelity::run_cmd(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.chain().any(|c| c.is::<InputError>()) { ExitCode::from(2) } else { ExitCode::FAILURE }
        }
    }
}
