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
    /// Keeps the embedded S3 endpoint over `<home>/s3` up and prints its URL and credentials,
    /// so that the AWS CLI, DuckDB or a Lambda under `cargo lambda watch` can use the lake.
    Serve {
        /// The stack's home.
        #[arg(long, default_value = ".lakestar")]
        home: PathBuf,
        /// The port (0 picks a free one).
        #[arg(long, default_value_t = 9000)]
        port: u16,
    },
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
        Command::Serve { home, port } => match serve(&home, port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
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

fn serve(home: &std::path::Path, port: u16) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let s3 = lakestar::lake::EmbeddedS3::start_on(&home.join("s3"), port).await?;
        s3.create_bucket(run::BUCKET).await?;
        let (access, secret) = s3.credentials();
        println!("Embedded S3 at {} (bucket {}, folder {})", s3.endpoint(), run::BUCKET, s3.root().display());
        println!("  export AWS_ENDPOINT_URL_S3={} AWS_ACCESS_KEY_ID={access} AWS_SECRET_ACCESS_KEY={secret} AWS_REGION=us-east-1 LAKESTAR_S3_PATH_STYLE=true", s3.endpoint());
        println!("  aws s3 ls --recursive s3://{}/curated/", run::BUCKET);
        println!("Press Ctrl-C to stop.");
        tokio::signal::ctrl_c().await?;
        anyhow::Ok(())
    })
}
