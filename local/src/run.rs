//! `lakestar run`, `watch`, `executions`, `history`, `redrive`, `reprocess` and `abandon`:
//! the command line over [`lakestar_local::stack::Stack`]. Every hint it prints is a command
//! that, copied and run, acts on the same home and warehouse.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use lakestar::trigger::TriggerOutput;
use lakestar_local::home::{HomeLock, HomeSettings, redact_url};
use lakestar_local::landing::collect_drops;
use lakestar_local::stack::{BUCKET, Stack, StackConfig};
use lakestar_local::store::{self, ExecutionRecord, list_executions, load_execution};
use serde_json::Value;

use lakestar_local::advice::what_to_do;

/// The home `lakestar` uses when `--home` is not given.
use lakestar_local::home::DEFAULT_HOME;

/// Where the stack lives and what it loads into.
#[derive(Debug, Clone, clap::Args)]
pub struct StackArgs {
    /// The stack's home: the embedded S3 keeps its buckets under `<home>/s3`, executions are
    /// kept under `<home>/executions`, the default warehouse is `<home>/warehouse.db`.
    #[arg(long, default_value = DEFAULT_HOME)]
    pub home: PathBuf,
    /// The warehouse: `postgres://user@host/db` or `sqlite://path`. Default: the one the home's
    /// runs loaded into, else SQLite in the home.
    #[arg(long)]
    pub warehouse: Option<String>,
    /// Let `--warehouse` differ from the warehouse the home's runs loaded into (the home then
    /// loads into the new one).
    #[arg(long, requires = "warehouse")]
    pub switch_warehouse: bool,
    /// The contract; default `pipeline.toml` in the first example directory, else the one the
    /// home's last run used.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl StackArgs {
    /// ` --home <home>` unless the home is the default: what hints append so that a copied
    /// command acts on this home.
    fn home_flag(&self) -> String {
        home_flag(&self.home)
    }
}

pub use lakestar_local::home::home_flag;

/// Arguments of `lakestar run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Example directories (holding `pipeline.toml` and `landing/`) or single landing files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Do not extract the contract's sources first.
    #[arg(long)]
    pub no_extract: bool,
    #[command(flatten)]
    pub stack: StackArgs,
}

/// Arguments of `lakestar extract`.
#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// The sources to extract; default every source of the contract.
    pub sources: Vec<String>,
    /// Only the sources whose `every` has passed since their last extraction, as the
    /// scheduled extract function does.
    #[arg(long)]
    pub due: bool,
    /// A testing aid: stop each extraction after this many pages, as a crash would.
    #[arg(long, hide = true)]
    pub stop_after_pages: Option<usize>,
    #[command(flatten)]
    pub stack: StackArgs,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("starting the async runtime")
}

/// The contract to use: `--config`, an input directory's `pipeline.toml`, or the one the home
/// remembers.
fn contract_path(args: &StackArgs, inputs: &[PathBuf]) -> anyhow::Result<PathBuf> {
    let path = match &args.config {
        Some(path) => path.clone(),
        None => match inputs.iter().find(|input| input.is_dir() && input.join("pipeline.toml").is_file()) {
            Some(dir) => dir.join("pipeline.toml"),
            None => HomeSettings::read(&args.home)?.contract.with_context(|| {
                format!(
                    "give --config, or an example directory holding pipeline.toml (the home {} remembers none)",
                    args.home.display()
                )
            })?,
        },
    };
    std::fs::canonicalize(&path).with_context(|| format!("no contract at {}", path.display()))
}

async fn open(args: &StackArgs, inputs: &[PathBuf]) -> anyhow::Result<Stack> {
    let mut config = StackConfig::new(&args.home, contract_path(args, inputs)?);
    config.warehouse = args.warehouse.clone();
    config.switch_warehouse = args.switch_warehouse;
    let stack = Stack::open(config).await?;
    if !stack.interrupted().is_empty() {
        eprintln!(
            "{} execution(s) were interrupted before they finished (their process stopped): `lakestar redrive --all-failed{}` resumes them.",
            stack.interrupted().len(),
            args.home_flag()
        );
    }
    Ok(stack)
}

/// How a command ended when a signal stopped it.
struct Stopped(&'static str);

/// Runs `work`; when Ctrl-C or SIGTERM comes first, records the execution being run as
/// aborted (resumable) and says how to resume it.
async fn until_signal<T>(
    stack: &Stack,
    home: &str,
    work: impl Future<Output = T>,
) -> anyhow::Result<Result<T, Stopped>> {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    let signal = tokio::select! {
        output = work => return Ok(Ok(output)),
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        () = terminate => "SIGTERM",
    };
    match stack.abort_running(signal)? {
        Some(run) => {
            eprintln!("\n{signal}: execution {run} recorded as ABORTED; `lakestar redrive {run}{home}` resumes it.")
        }
        None => eprintln!("\n{signal}: stopped."),
    }
    Ok(Err(Stopped(signal)))
}

fn stopped_code(stopped: &Stopped) -> ExitCode {
    ExitCode::from(if stopped.0 == "SIGTERM" { 143 } else { 130 })
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
        let file = record.key().strip_prefix("landing/").unwrap_or(record.key());
        if self.terminal {
            let _ = write!(stderr, "\r{bar} {}/{} {:<48}", self.done, self.total, file);
            if self.done == self.total {
                let _ = writeln!(stderr);
            }
        } else {
            let _ = writeln!(stderr, "{bar} {}/{} {file} {}", self.done, self.total, record.status);
        }
    }
}

/// What the load did to one table, in words: new keys, new and closed versions, type 1
/// updates and inferred members for a dimension; new, changed and re-keyed facts.
fn describe_table(table: &str, counts: &Value) -> Option<String> {
    let number = |key: &str| counts.get(key).and_then(Value::as_u64).unwrap_or(0);
    let mut parts = Vec::new();
    let mut part = |count: u64, one: &str, many: &str| {
        if count > 0 {
            parts.push(format!("{count} {}", if count == 1 { one } else { many }));
        }
    };
    if table == "dim_date" {
        part(number("inserted"), "new date", "new dates");
    } else if table.starts_with("dim_") {
        part(number("inserted"), "new key", "new keys");
        part(number("new_versions"), "new version", "new versions");
        part(number("closed_versions"), "closed version", "closed versions");
        part(number("type1_updates"), "type 1 update", "type 1 updates");
        part(number("inferred"), "inferred member", "inferred members");
        part(number("completed"), "inferred member completed", "inferred members completed");
        let known = number("new_versions") + number("type1_updates") + number("completed");
        part(number("updated").saturating_sub(known), "other update", "other updates");
    } else {
        part(number("inserted"), "new fact", "new facts");
        part(number("updated"), "changed fact", "changed facts");
        part(number("rekeyed"), "fact re-keyed", "facts re-keyed");
    }
    (!parts.is_empty()).then(|| format!("{table}: {}", parts.join(", ")))
}

fn failure_message(record: &ExecutionRecord) -> String {
    record.failure_message()
}

/// The state the record stands at: its output, the failed state's input, or its progress.
fn state_of(record: &ExecutionRecord) -> Option<&Value> {
    record.output.as_ref().or(record.failed_input.as_ref()).or(record.resume_input.as_ref())
}

/// Columns a file had that the contract does not know, and those it lacked, in words, and
/// what the schema contract made of them: columns evolved, values kept as null.
fn drift_of(record: &ExecutionRecord) -> Option<String> {
    let state = state_of(record)?;
    let names = |section: &str, key: &str| -> Vec<String> {
        state
            .get(section)
            .and_then(|section| section.get("drift"))
            .and_then(|drift| drift.get(key))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let (added, missing, evolved) =
        (names("ingest", "added"), names("ingest", "missing"), names("validate", "evolved"));
    let unreadable: Vec<String> = state
        .pointer("/validate/drift/unreadable_values")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(column, count)| format!("{column} {count}"))
        .collect();
    if added.is_empty() && missing.is_empty() && unreadable.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("columns the contract does not know: {}", added.join(", ")));
    }
    if !missing.is_empty() {
        parts.push(format!("contract columns the file lacks: {}", missing.join(", ")));
    }
    if !evolved.is_empty() {
        parts.push(format!("evolved into the warehouse: {}", evolved.join(", ")));
    }
    if !unreadable.is_empty() {
        parts.push(format!("values kept as null, their type could not read them: {}", unreadable.join(", ")));
    }
    Some(format!("schema drift: {}", parts.join("; ")))
}

/// Prints the summary table of executions; returns how many failed.
pub fn summary(records: &[ExecutionRecord], home: &Path) -> usize {
    if records.is_empty() {
        return 0;
    }
    let home = home_flag(home);
    let width =
        records.iter().map(|record| record.key().trim_start_matches("landing/").len()).max().unwrap_or(4).clamp(4, 48);
    let run_width = records.iter().map(|record| record.name.len()).max().unwrap_or(3);
    println!(
        "{:<width$} {:<12} {:<23} {:>7} {:>7} {:>7}  {:<run_width$}  load",
        "file", "dataset", "status", "rows", "valid", "quar.", "run"
    );
    let mut failed = 0;
    for record in records {
        let (rows, valid, quarantined) = record
            .rows()
            .map(|(rows, valid, rejected)| (rows.to_string(), valid.to_string(), rejected.to_string()))
            .unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
        let tables: Vec<String> = state_of(record)
            .and_then(|state| state.get("load")?.get("tables")?.as_object())
            .into_iter()
            .flatten()
            .filter_map(|(table, counts)| describe_table(table, counts))
            .collect();
        let file = record.key().strip_prefix("landing/").unwrap_or(record.key());
        let warnings = record.warnings();
        let status = if record.status == "SUCCEEDED" && !warnings.is_empty() {
            lakestar::load::SUCCEEDED_WITH_WARNINGS.to_string()
        } else {
            record.status.to_string()
        };
        println!(
            "{file:<width$} {:<12} {status:<23} {rows:>7} {valid:>7} {quarantined:>7}  {:<run_width$}  {}",
            record.dataset(),
            record.name,
            if tables.is_empty() { "-".to_string() } else { tables.join("; ") }
        );
        if let Some(drift) = drift_of(record) {
            println!("    {drift}");
        }
        for warning in &warnings {
            println!("    warning: {warning}");
        }
        if record.is_redrivable() {
            failed += 1;
            let error = record.error.as_deref().unwrap_or("?");
            println!(
                "    run {} failed in {}: {error}: {}",
                record.name,
                record.failed_state.as_deref().unwrap_or("its first state"),
                failure_message(record)
            );
            println!("    what to do: {}", what_to_do(error, &record.name, &home));
        }
    }
    failed
}

/// What the duplicate of an existing execution means, and what to do with it.
fn duplicate_line(home: &Path, run: &str) -> String {
    let flag = home_flag(home);
    let Ok(record) = load_execution(home, run) else {
        return format!("duplicate of run {run}; nothing started");
    };
    match record.status.as_str() {
        store::SUCCEEDED => format!(
            "duplicate: already loaded by run {run}; nothing started (`lakestar reprocess {run}{flag}` processes it again as a new run)"
        ),
        store::FAILED | store::ABORTED => format!(
            "duplicate of run {run}, which is {} in {} ({}); nothing started: `lakestar redrive {run}{flag}` resumes it after a fix, `lakestar reprocess {run}{flag}` processes the file again as a new run, `lakestar abandon {run}{flag}` leaves it out of --all-failed",
            record.status,
            record.failed_state.as_deref().unwrap_or("its first state"),
            record.error.as_deref().unwrap_or("?")
        ),
        status => format!("duplicate of run {run}, which is {status}; nothing started"),
    }
}

/// Prints what the trigger did not start: duplicates, unmatched keys, unreadable records.
fn print_not_started(home: &Path, outputs: &[(String, TriggerOutput)]) {
    for (key, output) in outputs {
        let file = key.strip_prefix("landing/").unwrap_or(key);
        for run in &output.duplicates {
            println!("{file}: {}", duplicate_line(home, run));
        }
        for unmatched in &output.unmatched {
            println!(
                "{unmatched}: no dataset's `match` pattern covers it; nothing started (add a pattern to a dataset in pipeline.toml)"
            );
        }
        for invalid in &output.invalid {
            println!("{file}: the event could not be read ({invalid}); nothing started");
        }
    }
}

/// Where to look after a run: the warehouse (a query on the contract's own tables) and the lake.
fn print_where(stack: &Stack, args: &StackArgs) {
    println!();
    println!("Warehouse: {}", redact_url(stack.warehouse_url()));
    if let (Some(path), Some(table)) =
        (stack.warehouse_url().strip_prefix("sqlite://"), stack.contract_tables().first())
    {
        println!("  sqlite3 {path} 'SELECT * FROM {table} LIMIT 20'");
    }
    println!(
        "Lake: {}  (`lakestar serve{}` to browse it over S3)",
        stack.s3().root().join(BUCKET).display(),
        args.home_flag()
    );
}

/// Extracts sources one by one (one failing does not stop the others), printing a line for
/// each; returns the trigger's outputs of their pages and whether any failed.
async fn extract_sources(
    stack: &Stack,
    names: &[String],
    options: &lakestar::extract::Options,
    home: &str,
) -> anyhow::Result<(Vec<(String, TriggerOutput)>, bool)> {
    let names = if names.is_empty() { stack.sources() } else { names.to_vec() };
    let mut outputs = Vec::new();
    let mut failed = false;
    for name in &names {
        match stack.extract(std::slice::from_ref(name), options).await {
            Ok(extracted) => {
                for done in extracted {
                    eprintln!("{}", describe_extraction(&done.extraction));
                    outputs.extend(done.triggered);
                }
            }
            Err(error) => {
                failed = true;
                eprintln!("source {name}: extraction failed: {error:#}");
                eprintln!(
                    "    what to do: fix the cause, then `lakestar extract {name}{home}` resumes it (the watermark did not move)"
                );
            }
        }
    }
    Ok((outputs, failed))
}

/// One extraction in words.
fn describe_extraction(extraction: &lakestar::extract::Extraction) -> String {
    use lakestar::extract::Outcome;
    let after =
        |watermark: &Option<String>| watermark.as_deref().map(|mark| format!(" after {mark}")).unwrap_or_default();
    match extraction.outcome {
        Outcome::NotDue => format!("source {}: not due (its `every` has not passed)", extraction.source),
        Outcome::NothingNew => format!("source {}: nothing new{}", extraction.source, after(&extraction.to)),
        Outcome::Extracted => format!(
            "source {}: {} row(s) in {} page(s) ({} written, {} already there){}{}",
            extraction.source,
            extraction.rows,
            extraction.pages.len(),
            extraction.written,
            extraction.pages.len() - extraction.written.min(extraction.pages.len()),
            after(&extraction.from),
            extraction.to.as_deref().map(|to| format!(", watermark now {to}")).unwrap_or_default()
        ),
    }
}

/// `lakestar extract`.
pub fn extract(args: ExtractArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let stack = open(&args.stack, &[]).await?;
        if stack.sources().is_empty() {
            bail!("the contract declares no source: add a `[sources.<name>]` section (docs/sources.md)");
        }
        let options = lakestar::extract::Options { due_only: args.due, stop_after_pages: args.stop_after_pages };
        let home = args.stack.home_flag();
        let (outputs, extract_failed) = extract_sources(&stack, &args.sources, &options, &home).await?;
        let started: usize = outputs.iter().map(|(_, output)| output.started.len()).sum();
        let mut progress = Progress::new(started);
        let records = match until_signal(&stack, &home, stack.run_started(|record| progress.step(record))).await? {
            Ok(records) => records?,
            Err(stopped) => return Ok(stopped_code(&stopped)),
        };
        let failed = summary(&records, &args.stack.home);
        print_not_started(&args.stack.home, &outputs);
        if failed > 0 {
            println!(
                "{failed} execution(s) failed: fix each cause as said above, then `lakestar redrive --all-failed{home}`"
            );
        }
        Ok(if failed == 0 && !extract_failed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}

/// `lakestar run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let drops = collect_drops(&args.inputs)?;
        let stack = open(&args.stack, &args.inputs).await?;
        let extracting = !args.no_extract && !stack.sources().is_empty();
        if drops.is_empty() && !extracting {
            bail!(
                "no landing files found under {}: put them in a `landing/` folder",
                args.inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            );
        }
        eprintln!("Embedded S3 at {} (bucket {BUCKET}, folder {})", stack.s3().endpoint(), stack.s3().root().display());
        let mut outputs = Vec::new();
        let mut started = 0;
        let mut extract_failed = false;
        if extracting {
            let home = args.stack.home_flag();
            let (extracted, failed) =
                extract_sources(&stack, &[], &lakestar::extract::Options::default(), &home).await?;
            started += extracted.iter().map(|(_, output)| output.started.len()).sum::<usize>();
            outputs.extend(extracted);
            extract_failed = failed;
        }
        for drop in &drops {
            let output = stack.drop_file(&drop.key, &drop.path).await?;
            started += output.started.len();
            outputs.push((drop.key.clone(), output));
        }
        let mut progress = Progress::new(started);
        let home = args.stack.home_flag();
        let records = match until_signal(&stack, &home, stack.run_started(|record| progress.step(record))).await? {
            Ok(records) => records?,
            Err(stopped) => return Ok(stopped_code(&stopped)),
        };
        let failed = summary(&records, &args.stack.home);
        print_not_started(&args.stack.home, &outputs);
        print_where(&stack, &args.stack);
        if failed > 0 {
            println!(
                "{failed} execution(s) failed: fix each cause as said above, then `lakestar redrive --all-failed{home}`"
            );
        }
        let unmatched = outputs.iter().any(|(_, output)| !output.unmatched.is_empty() || !output.invalid.is_empty());
        Ok(if failed == 0 && !unmatched && !extract_failed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}

/// `lakestar redrive`.
pub fn redrive(args: &StackArgs, runs: &[String], all_failed: bool) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let stack = open(args, &[]).await?;
        let names: Vec<String> = if all_failed {
            list_executions(&args.home)?
                .into_iter()
                .filter(ExecutionRecord::is_redrivable)
                .map(|record| record.name)
                .collect()
        } else {
            runs.to_vec()
        };
        if names.is_empty() {
            println!(
                "Nothing to re-drive: no failed or aborted execution under {}.",
                args.home.join("executions").display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        let mut progress = Progress::new(names.len());
        let home = args.home_flag();
        let work = async {
            let mut records = Vec::new();
            for name in &names {
                let record = stack.redrive(name).await?;
                progress.step(&record);
                records.push(record);
            }
            anyhow::Ok(records)
        };
        let records = match until_signal(&stack, &home, work).await? {
            Ok(records) => records?,
            Err(stopped) => return Ok(stopped_code(&stopped)),
        };
        let failed = summary(&records, &args.home);
        Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}

/// `lakestar reprocess`: the files of these runs again, each as a new run.
pub fn reprocess(args: &StackArgs, runs: &[String]) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let stack = open(args, &[]).await?;
        let mut outputs = Vec::new();
        for run in runs {
            let record = load_execution(&args.home, run)?;
            outputs.push((record.key().to_string(), stack.reprocess(run).await?));
        }
        let started: usize = outputs.iter().map(|(_, output)| output.started.len()).sum();
        let mut progress = Progress::new(started);
        let home = args.home_flag();
        let records = match until_signal(&stack, &home, stack.run_started(|record| progress.step(record))).await? {
            Ok(records) => records?,
            Err(stopped) => return Ok(stopped_code(&stopped)),
        };
        let failed = summary(&records, &args.home);
        print_not_started(&args.home, &outputs);
        Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    })
}

/// `lakestar abandon`: gives up failed executions (they leave `redrive --all-failed`).
pub fn abandon(args: &StackArgs, runs: &[String]) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let stack = open(args, &[]).await?;
        for run in runs {
            let record = stack.abandon(run)?;
            println!(
                "{} ({}): ABANDONED; `lakestar reprocess {run}{}` processes its file again as a new run",
                record.name,
                record.key(),
                args.home_flag()
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `lakestar executions`.
pub fn executions(home: &Path) -> anyhow::Result<ExitCode> {
    // With the home free, an execution still RUNNING is one whose process stopped.
    let recovered = match HomeLock::try_acquire(home)? {
        Some(_lock) => store::recover_interrupted(home)?,
        None => {
            eprintln!("A lakestar process is using {}: RUNNING executions may be running now.", home.display());
            Vec::new()
        }
    };
    let records = list_executions(home)?;
    if records.is_empty() {
        println!("No executions under {}.", home.join("executions").display());
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<32} {:<12} {:<10} {:<25} {:>8}  file", "run", "dataset", "status", "started", "redrives");
    for record in &records {
        println!(
            "{:<32} {:<12} {:<10} {:<25} {:>8}  {}",
            record.name,
            record.dataset(),
            record.status,
            record.start_date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            record.redrive_count,
            record.key()
        );
    }
    if !recovered.is_empty() {
        println!(
            "{} execution(s) were interrupted (their process stopped): `lakestar redrive --all-failed{}` resumes them.",
            recovered.len(),
            home_flag(home)
        );
    }
    let stopped = records.iter().filter(|record| record.is_redrivable()).count();
    if stopped > recovered.len() {
        println!(
            "{stopped} execution(s) failed or were stopped: `lakestar history <run>{flag}` says why; once fixed, `lakestar redrive --all-failed{flag}` resumes them.",
            flag = home_flag(home)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `lakestar history`.
pub fn history(home: &Path, run: &str) -> anyhow::Result<ExitCode> {
    let record = load_execution(home, run)?;
    println!("{} ({}, {} re-drive(s)) {}", record.name, record.status, record.redrive_count, record.key());
    for event in &record.history {
        let mut detail = String::new();
        for key in ["resource", "error", "cause", "attempt", "next", "redriveCount"] {
            if let Some(value) = event.detail.get(key) {
                let text = value.as_str().map_or_else(|| value.to_string(), str::to_string);
                detail.push_str(&format!(" {key}={text}"));
            }
        }
        println!(
            "{:>4} {} {:<20} {:<20}{}",
            event.id,
            event.timestamp.format("%H:%M:%S%.3f"),
            event.kind,
            event.state.as_deref().unwrap_or(""),
            detail
        );
    }
    if let Some(drift) = drift_of(&record) {
        println!("{drift}");
    }
    if record.is_redrivable() {
        let error = record.error.as_deref().unwrap_or("?");
        println!(
            "failed in {}: {error}: {}",
            record.failed_state.as_deref().unwrap_or("its first state"),
            failure_message(&record)
        );
        println!("what to do: {}", what_to_do(error, &record.name, &home_flag(home)));
    }
    Ok(if record.is_redrivable() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// `lakestar watch`: polls the folder every second; a new or changed file is dropped into the
/// lake and its execution run, as an S3 event would start it in the cloud.
pub fn watch(args: &StackArgs, dir: &Path, max_runs: Option<usize>) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let stack = open(args, &[dir.to_path_buf()]).await?;
        let mut seen: BTreeMap<String, (u64, Option<SystemTime>)> = BTreeMap::new();
        let mut runs = 0;
        let home = args.home_flag();
        eprintln!("Watching {} (Ctrl-C to stop); lake at {}", dir.display(), stack.s3().endpoint());
        let work = async {
            // The sources first, once: their pages start executions like dropped files.
            if !stack.sources().is_empty() {
                let (outputs, _) = extract_sources(&stack, &[], &lakestar::extract::Options::default(), &home).await?;
                let records = stack.run_started(|_| {}).await?;
                runs += records.len();
                if !records.is_empty() {
                    summary(&records, &args.home);
                }
                print_not_started(&args.home, &outputs);
            }
            loop {
                for drop in collect_drops(&[dir.to_path_buf()])? {
                    let metadata = std::fs::metadata(&drop.path).ok();
                    let stamp = (metadata.as_ref().map_or(0, |m| m.len()), metadata.and_then(|m| m.modified().ok()));
                    if seen.get(&drop.key) == Some(&stamp) {
                        continue;
                    }
                    seen.insert(drop.key.clone(), stamp);
                    let output = stack.drop_file(&drop.key, &drop.path).await?;
                    let records = stack.run_started(|_| {}).await?;
                    runs += records.len();
                    if !records.is_empty() {
                        summary(&records, &args.home);
                    }
                    print_not_started(&args.home, &[(drop.key.clone(), output)]);
                }
                if max_runs.is_some_and(|max| runs >= max) {
                    return anyhow::Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        };
        match until_signal(&stack, &home, work).await? {
            Ok(done) => done.map(|()| ExitCode::SUCCESS),
            Err(_) => Ok(ExitCode::SUCCESS),
        }
    })
}
