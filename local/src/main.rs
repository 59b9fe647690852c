//! `lakestar`: the offline Lakestar stack on the command line.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod run;
mod scan;

/// Lakestar offline: check contracts and run the pipeline on this machine, without AWS.
#[derive(Debug, Parser)]
#[command(name = "lakestar", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validates a contract file (`pipeline.toml`); exits non-zero listing every problem.
    Check {
        /// The contract file.
        contract: PathBuf,
    },
    /// Runs an example directory (its `pipeline.toml` and `landing/` files) through the
    /// pipeline against an embedded S3 endpoint.
    Run(run::RunArgs),
    /// Scans Parquet and CSV files (a file, a folder, or `s3://bucket/prefix`) for values that
    /// look like personal data; exits non-zero when any is found. Names columns, never values.
    Scan {
        /// What to scan.
        target: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LAKESTAR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Check { contract } => check(&contract),
        Command::Scan { target } => match scan::scan(&target) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
        Command::Run(args) => match run::run(args) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match lakestar::contract::Contract::load(path) {
        Ok(contract) => {
            println!("{}: ok, {} dataset(s)", path.display(), contract.datasets.len());
            for dataset in &contract.datasets {
                println!(
                    "  {:<12} → {:<14} {} column(s), matches {}",
                    dataset.name,
                    dataset.table.name,
                    dataset.columns.len(),
                    dataset.config.patterns.join(", ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
