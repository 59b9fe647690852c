//! `lakestar`: the offline Lakestar stack on the command line.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod dry_run;
mod infer;
mod quality;
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
    /// Checks one file against its contract without loading it: ingest and validate in a
    /// scratch store, nothing written. Exit code 0 when the quality gate passes, 1 when it
    /// fails, 2 when the file cannot be read as its dataset.
    Validate(dry_run::ValidateArgs),
    /// Drafts a contract from sample files of one dataset: format, headers and aliases, types
    /// and date formats, required columns, allowed values, personal data and its masking, the
    /// natural key and the table's kind, each guess with a comment saying what it rests on.
    Infer(infer::InferArgs),
    /// Runs an example directory (its `pipeline.toml` and `landing/` files) through the real
    /// state machine: each file lands in the embedded S3, its S3 event goes through the
    /// trigger handler, and each started execution runs ingest → validate → mask → load.
    Run(run::RunArgs),
    /// Extracts the contract's sources (PostgreSQL, MySQL, HTTP APIs) into the lake's
    /// `landing/` as gzip NDJSON pages, incrementally after each source's watermark, and runs
    /// the executions their pages start.
    Extract(run::ExtractArgs),
    /// Watches a folder: files dropped into it (or its `landing/`) start executions, as S3
    /// events do in the cloud.
    Watch {
        /// The folder.
        dir: PathBuf,
        #[command(flatten)]
        stack: run::StackArgs,
        /// Stop after this many executions (for scripts and tests).
        #[arg(long, hide = true)]
        max_runs: Option<usize>,
    },
    /// Lists the executions under the home, with their status.
    Executions {
        /// The stack's home.
        #[arg(long, default_value = ".lakestar")]
        home: PathBuf,
    },
    /// Prints each run's quality, oldest first: rows, valid rows, reject ratio, the DQDL rules
    /// that failed (or quarantined rows) and warned, and schema drift.
    Quality {
        /// Only this dataset's runs.
        dataset: Option<String>,
        /// The stack's home.
        #[arg(long, default_value = ".lakestar")]
        home: PathBuf,
    },
    /// Prints an execution's event history (states entered and exited, tasks scheduled,
    /// succeeded and failed with error and cause).
    History {
        /// The run id (execution name).
        run: String,
        /// The stack's home.
        #[arg(long, default_value = ".lakestar")]
        home: PathBuf,
    },
    /// Re-drives failed executions from their failed state with the same input, keeping what
    /// the states before it produced (as Step Functions' RedriveExecution).
    Redrive {
        /// Run ids to re-drive.
        runs: Vec<String>,
        /// Re-drive every failed execution, in the order the runs started.
        #[arg(long, conflicts_with = "runs")]
        all_failed: bool,
        #[command(flatten)]
        stack: run::StackArgs,
    },
    /// Processes the files of these runs again, each as a new run (as a new object version
    /// does in the cloud): after a quality-gate failure, or a file corrected in place.
    Reprocess {
        /// Run ids whose files to process again.
        #[arg(required = true)]
        runs: Vec<String>,
        #[command(flatten)]
        stack: run::StackArgs,
    },
    /// Gives up failed executions: they are left out of `redrive --all-failed`.
    Abandon {
        /// Run ids to abandon.
        #[arg(required = true)]
        runs: Vec<String>,
        #[command(flatten)]
        stack: run::StackArgs,
    },
    /// Keeps the embedded S3 endpoint over `<home>/s3` up and prints its URL and credentials,
    /// so that the AWS CLI, DuckDB or a Lambda under `cargo lambda watch` can use the lake.
    Serve {
        /// The stack's home.
        #[arg(long, default_value = ".lakestar")]
        home: PathBuf,
        /// The port (0 picks a free one).
        #[arg(long, default_value_t = 9000)]
        port: u16,
        /// The check API's port (0 picks a free one): `POST /check`, as the check function's URL.
        #[arg(long, default_value_t = 9001)]
        check_port: u16,
        /// The web console's port (0 picks a free one).
        #[arg(long, default_value_t = 9002)]
        console_port: u16,
        /// The address the console listens on. Anything but 127.0.0.1 shows the lake's
        /// executions, quality and quarantine to the network: say so explicitly.
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// The contract the console's re-drives and checks use; default the one the home's
        /// last run used. Without one the console only shows what is there.
        #[arg(long)]
        config: Option<PathBuf>,
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
    // Infer reads samples under a dataset that declares no column, and validate's report says
    // what the stages would warn of (drift, the gate): their warnings would say it twice.
    let quiet = match cli.command {
        Command::Infer(_) | Command::Validate(_) => "warn,lakestar::ingest=error,lakestar::validate=error",
        _ => "warn",
    };
    let filter = lakestar::config::Environment::get().log.clone().unwrap_or_else(|| quiet.to_string());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        // Colour codes only on a terminal: a log file or a CI log gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Check { contract } => check(&contract),
        Command::Serve { home, port, check_port, console_port, bind, config } => match serve(&Serve {
            home,
            port,
            check_port,
            console: std::net::SocketAddr::new(bind, console_port),
            config,
        }) {
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
        Command::Validate(args) => dry_run::validate(args),
        Command::Infer(args) => report(infer::infer(args)),
        Command::Run(args) => report(run::run(args)),
        Command::Extract(args) => report(run::extract(args)),
        Command::Watch { dir, stack, max_runs } => report(run::watch(&stack, &dir, max_runs)),
        Command::Executions { home } => report(run::executions(&home)),
        Command::History { run, home } => report(run::history(&home, &run)),
        Command::Quality { dataset, home } => report(quality::quality(&home, dataset.as_deref())),
        Command::Redrive { runs, all_failed, stack } => {
            if runs.is_empty() && !all_failed {
                eprintln!("error: name the runs to re-drive, or give --all-failed");
                return ExitCode::FAILURE;
            }
            report(run::redrive(&stack, &runs, all_failed))
        }
        Command::Reprocess { runs, stack } => report(run::reprocess(&stack, &runs)),
        Command::Abandon { runs, stack } => report(run::abandon(&stack, &runs)),
    }
}

fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
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
            for source in &contract.sources {
                let kind = source.kind.name();
                let cursor = source
                    .cursor
                    .as_ref()
                    .map_or("full each time".to_string(), |cursor| format!("after `{}`", cursor.name));
                println!(
                    "  source {:<10} {kind:<8} → {:<12} {}/…, {cursor}",
                    source.name, source.dataset, source.prefix
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

/// What `lakestar serve` serves.
struct Serve {
    home: PathBuf,
    port: u16,
    check_port: u16,
    console: std::net::SocketAddr,
    config: Option<PathBuf>,
}

fn serve(serve: &Serve) -> anyhow::Result<()> {
    use lakestar_local::console::{self, Console};
    let home = serve.home.as_path();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        // With a contract (given, or the home's last run's) the stack itself serves: the
        // console re-drives through it. Without, the embedded S3 alone, and the console shows.
        let contract = match &serve.config {
            Some(path) => Some(std::fs::canonicalize(path).map_err(|error| anyhow::anyhow!("no contract at {}: {error}", path.display()))?),
            None => lakestar_local::home::HomeSettings::read(home)?.contract.filter(|path| path.is_file()),
        };
        let mut bare = None;
        let stack = match contract {
            Some(contract) => {
                let mut config = lakestar_local::stack::StackConfig::new(home, contract);
                config.s3_port = Some(serve.port);
                Some(lakestar_local::stack::Stack::open(config).await?)
            }
            None => {
                // One process at a time on a home: the embedded S3's temporary files are its own.
                let lock = lakestar_local::home::HomeLock::acquire(home)?;
                let s3 = lakestar::lake::EmbeddedS3::start_on(&home.join("s3"), serve.port).await?;
                s3.create_bucket(lakestar_local::stack::BUCKET).await?;
                bare = Some((lock, s3));
                None
            }
        };
        let s3 = match (&stack, &bare) {
            (Some(stack), _) => stack.s3(),
            (None, Some((_, s3))) => s3,
            (None, None) => anyhow::bail!("no S3 endpoint was started"),
        };
        let (access, secret) = s3.credentials();
        let (endpoint, root) = (s3.endpoint(), s3.root().display().to_string());
        let lake = lakestar::lake::Lake::new(s3.client(), lakestar_local::stack::BUCKET);
        // Written without panicking when whoever started the server stopped reading.
        let mut out = std::io::stdout();
        let bucket = lakestar_local::stack::BUCKET;
        let _ = writeln!(out, "Embedded S3 at {endpoint} (bucket {bucket}, folder {root})");
        let _ = writeln!(out, "  export AWS_ENDPOINT_URL_S3={endpoint} AWS_ACCESS_KEY_ID={access} AWS_SECRET_ACCESS_KEY={secret} AWS_REGION=us-east-1 LAKESTAR_S3_PATH_STYLE=true");
        let _ = writeln!(out, "  aws s3 ls --recursive s3://{bucket}/curated/");
        let contract_source = || lakestar::function::ContractSource::S3 {
            lake: lake.clone(),
            key: lakestar::lake::CONFIG_KEY.to_string(),
            cached: Default::default(),
        };
        let check = lakestar_local::check_api::start(
            lakestar::function::check::CheckFunction::new(lake.clone(), contract_source()),
            serve.check_port,
        )
        .await
        .map_err(|error| {
            anyhow::anyhow!("starting the check API on port {}: {error}; give --check-port 0 for any free port", serve.check_port)
        })?;
        let _ = writeln!(out, "Check API at http://{check}/check (the check function's URL, offline)");
        let _ = writeln!(out, "  curl -s -X POST 'http://{check}/check?name=sales.csv' --data-binary @sales.csv");
        let checker = stack.is_some().then(|| lakestar::function::check::CheckFunction::new(lake.clone(), contract_source()));
        let has_stack = stack.is_some();
        let console = std::sync::Arc::new(Console::new(home.to_path_buf(), stack, checker)?);
        let address = console::start(console, serve.console).await.map_err(|error| {
            anyhow::anyhow!("starting the console on {}: {error}; give --console-port 0 for any free port", serve.console)
        })?;
        if !serve.console.ip().is_loopback() {
            let _ = writeln!(
                out,
                "Warning: the console listens on {address}, beyond this machine: anyone who reaches it sees the executions, quality and quarantine (values on request) and can re-drive."
            );
        }
        let _ = writeln!(out, "Console: http://{address}/");
        if !has_stack {
            let _ = writeln!(
                out,
                "  (no contract: the console shows what is there; `lakestar serve --config pipeline.toml` also re-drives and checks files)"
            );
        }
        let _ = writeln!(out, "Press Ctrl-C to stop.");
        let _ = out.flush();
        tokio::signal::ctrl_c().await?;
        drop(bare);
        anyhow::Ok(())
    })
}
