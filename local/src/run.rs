//! `lakestar run`, `watch`, `executions`, `history` and `redrive`: the command line over
//! [`lakestar_local::stack::Stack`].

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use lakestar_local::landing::collect_drops;
use lakestar_local::stack::{BUCKET, Stack, StackConfig};
use lakestar_local::store::{ExecutionRecord, list_executions, load_execution};

/// Where the stack lives and what it loads into.
#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// The stack's home: the embedded S3 keeps its buckets under `<home>/s3`, executions are
    /// kept under `<home>/executions`, the default warehouse is `<home>/warehouse.db`.
    #[arg(long, default_value = ".lakestar")]
    pub home: PathBuf,
    /// The warehouse: `postgres://user@host/db` or `sqlite://path` (default SQLite in the home).
    #[arg(long)]
    pub warehouse: Option<String>,
    /// The contract; default `pipeline.toml` in the first example directory, else the one the
    /// home's last run used.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Arguments of `lakestar run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Example directories (holding `pipeline.toml` and `landing/`) or single landing files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub stack: StackArgs,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// The contract to use: `--config`, an input directory's `pipeline.toml`, or the one the home
/// remembers.
fn contract_path(args: &StackArgs, inputs: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let remembered = args.home.join("pipeline.toml.path");
    let path = match &args.config {
        Some(path) => path.clone(),
        None => match inputs.iter().find(|input| input.is_dir() && input.join("pipeline.toml").is_file()) {
            Some(dir) => dir.join("pipeline.toml"),
            None => PathBuf::from(
                std::fs::read_to_string(&remembered)
                    .with_context(|| "give --config, or an example directory holding pipeline.toml".to_string())?,
            ),
        },
    };
    let absolute = std::fs::canonicalize(&path).with_context(|| format!("no contract at {}", path.display()))?;
    std::fs::create_dir_all(&args.home).with_context(|| format!("creating {}", args.home.display()))?;
    std::fs::write(&remembered, absolute.display().to_string())?;
    Ok(absolute)
}

async fn open(args: &StackArgs, inputs: &[PathBuf]) -> anyhow::Result<Stack> {
    let mut config = StackConfig::new(&args.home, contract_path(args, inputs)?);
    config.warehouse = args.warehouse.clone();
    Stack::open(config).await
}

/// Progress on stderr: a bar on a terminal, a line per execution otherwise.
struct Progress {
    total: usize,
    done: usize,
    terminal: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress { total, done: 0, terminal: std::io::stderr().is_terminal() }
    }

    fn step(&mut self, record: &ExecutionRecord) {
        self.done += 1;
        let width = 30;
        let filled = (self.done * width).checked_div(self.total.max(1)).unwrap_or(width).min(width);
        let bar = format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled));
        let mut stderr = std::io::stderr();
        if self.terminal {
            let _ = write!(stderr, "\r{bar} {}/{} {:<48}", self.done, self.total, record.name);
            if self.done == self.total {
                let _ = writeln!(stderr);
            }
        } else {
            let _ = writeln!(stderr, "{bar} {}/{} {} {}", self.done, self.total, record.name, record.status);
        }
    }
}

/// Prints the summary table of executions; returns how many failed.
pub fn summary(records: &[ExecutionRecord]) -> usize {
    println!(
        "{:<40} {:<10} {:<10} {:>6} {:>6} {:>6}  tables (+inserted ~updated)",
        "run", "dataset", "status", "rows", "valid", "quar."
    );
    let mut failed = 0;
    for record in records {
        let (rows, valid, quarantined) = record
            .rows()
            .map(|(rows, valid, rejected)| (rows.to_string(), valid.to_string(), rejected.to_string()))
            .unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
        let tables: Vec<String> = record
            .tables()
            .into_iter()
            .map(|(table, (inserted, updated))| format!("{table} +{inserted} ~{updated}"))
            .collect();
        println!(
            "{:<40} {:<10} {:<10} {:>6} {:>6} {:>6}  {}",
            record.name,
            record.dataset(),
            record.status,
            rows,
            valid,
            quarantined,
            tables.join(", ")
        );
        if record.status == "FAILED" {
            failed += 1;
            println!(
                "    failed in {}: {}: {}",
                record.failed_state.as_deref().unwrap_or("?"),
                record.error.as_deref().unwrap_or("?"),
                record.cause.as_deref().unwrap_or("")
            );
        }
    }
    failed
}

/// `lakestar run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let drops = collect_drops(&args.inputs)?;
        if drops.is_empty() {
            bail!(
                "no landing files found under {}: put them in a `landing/` folder",
                args.inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            );
        }
        let stack = open(&args.stack, &args.inputs).await?;
        eprintln!("Embedded S3 at {} (bucket {BUCKET}, folder {})", stack.s3().endpoint(), stack.s3().root().display());
        let mut unmatched = Vec::new();
        let mut duplicates = Vec::new();
        for drop in &drops {
            let output = stack.drop_file(&drop.key, &drop.path).await?;
            unmatched.extend(output.unmatched);
            duplicates.extend(output.duplicates);
        }
        let mut progress = Progress::new(drops.len() - unmatched.len() - duplicates.len());
        let records = stack.run_started(|record| progress.step(record)).await?;
        let failed = summary(&records);
        for run in &duplicates {
            println!("{run:<40} duplicate: an execution exists for this object already; nothing started");
        }
        for key in &unmatched {
            println!("{key:<40} unmatched: no dataset's `match` pattern covers it; nothing started");
        }
        println!();
        println!("Warehouse: {}", stack.warehouse_url());
        if let Some(path) = stack.warehouse_url().strip_prefix("sqlite://") {
            println!("  sqlite3 {path} 'SELECT customer_id, city, valid_from, valid_to, is_current FROM dim_customer'");
        }
        println!(
            "Lake: {}  (lakestar serve --home {} to browse it over S3)",
            stack.s3().root().join(BUCKET).display(),
            args.stack.home.display()
        );
        if failed > 0 {
            println!(
                "{failed} execution(s) failed: fix the cause, then `lakestar redrive --all-failed --home {}`",
                args.stack.home.display()
            );
        }
        Ok(if failed == 0 && unmatched.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}

/// `lakestar redrive`.
pub fn redrive(args: &StackArgs, runs: &[String], all_failed: bool) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = if all_failed {
        list_executions(&args.home)?
            .into_iter()
            .filter(|record| record.status == "FAILED")
            .map(|record| record.name)
            .collect()
    } else {
        runs.to_vec()
    };
    if names.is_empty() {
        println!("Nothing to re-drive: no failed execution under {}.", args.home.join("executions").display());
        return Ok(ExitCode::SUCCESS);
    }
    runtime()?.block_on(async {
        let stack = open(args, &[]).await?;
        let mut progress = Progress::new(names.len());
        let mut records = Vec::new();
        for name in &names {
            let record = stack.redrive(name).await?;
            progress.step(&record);
            records.push(record);
        }
        let failed = summary(&records);
        Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}

/// `lakestar executions`.
pub fn executions(home: &Path) -> anyhow::Result<ExitCode> {
    let records = list_executions(home)?;
    if records.is_empty() {
        println!("No executions under {}.", home.join("executions").display());
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<40} {:<10} {:<10} {:<25} {:>8}  key", "run", "dataset", "status", "started", "redrives");
    for record in &records {
        println!(
            "{:<40} {:<10} {:<10} {:<25} {:>8}  {}",
            record.name,
            record.dataset(),
            record.status,
            record.start_date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            record.redrive_count,
            record.key()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `lakestar history`.
pub fn history(home: &Path, run: &str) -> anyhow::Result<ExitCode> {
    let record = load_execution(home, run)?;
    println!("{} ({}, {} re-drive(s))", record.name, record.status, record.redrive_count);
    for event in &record.history {
        let mut detail = String::new();
        for key in ["resource", "error", "cause", "attempt", "next", "redriveCount"] {
            if let Some(value) = event.detail.get(key) {
                let text = value.as_str().map_or_else(|| value.to_string(), str::to_string);
                detail.push_str(&format!(" {key}={text}"));
            }
        }
        println!(
            "{:>4} {} {:<20} {:<16}{}",
            event.id,
            event.timestamp.format("%H:%M:%S%.3f"),
            event.kind,
            event.state.as_deref().unwrap_or(""),
            detail
        );
    }
    Ok(if record.status == "FAILED" { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// `lakestar watch`: polls the folder every second; a new or changed file is dropped into the
/// lake and its execution run, as an S3 event would start it in the cloud.
pub fn watch(args: &StackArgs, dir: &Path, max_runs: Option<usize>) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let stack = open(args, &[dir.to_path_buf()]).await?;
        let mut seen: BTreeMap<String, (u64, Option<SystemTime>)> = BTreeMap::new();
        let mut runs = 0;
        eprintln!("Watching {} (Ctrl-C to stop); lake at {}", dir.display(), stack.s3().endpoint());
        loop {
            for drop in collect_drops(&[dir.to_path_buf()])? {
                let metadata = std::fs::metadata(&drop.path).ok();
                let stamp = (metadata.as_ref().map_or(0, |m| m.len()), metadata.and_then(|m| m.modified().ok()));
                if seen.get(&drop.key) == Some(&stamp) {
                    continue;
                }
                seen.insert(drop.key.clone(), stamp);
                let output = stack.drop_file(&drop.key, &drop.path).await?;
                for key in output.unmatched {
                    println!("{key}: unmatched: no dataset covers it");
                }
                let records = stack.run_started(|_| {}).await?;
                runs += records.len();
                if !records.is_empty() {
                    summary(&records);
                }
            }
            if max_runs.is_some_and(|max| runs >= max) {
                return Ok(ExitCode::SUCCESS);
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            }
        }
    })
}
