//! `lakestar validate <file>`: one file through ingest and validate in a scratch store that
//! is removed afterwards; no home, lake or warehouse is touched. Exit code 0 when the quality
//! gate passes, 1 when it fails, 2 when the file cannot be read as its dataset.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use lakestar::contract::Contract;
use lakestar::dry_run::{DryRunOptions, FileReport, Scratch};
use lakestar::lake::{Lake, MultipartWriter};

/// `lakestar validate`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The file to check (any format ingest reads, gzip or not).
    pub file: PathBuf,
    /// The contract; by default the nearest `pipeline.toml` in the file's folder or above.
    #[arg(long)]
    pub contract: Option<PathBuf>,
    /// The dataset to check it as; by default the one whose patterns match its path from
    /// `landing/` (or `landing/<file name>` for a file outside a landing folder).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Print the report as JSON (the same document the check API answers).
    #[arg(long)]
    pub json: bool,
    /// How many rejected rows to list.
    #[arg(long, default_value_t = 10)]
    pub rows: usize,
    /// Show the values of rejected rows (they may be personal data).
    #[arg(long)]
    pub show_values: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Checks the file; see the module's exit codes.
pub fn validate(args: ValidateArgs) -> ExitCode {
    match check(&args) {
        Ok(report) => {
            if let Err(error) = print(&args, &report) {
                eprintln!("Error: {error:#}");
                return ExitCode::from(2);
            }
            if report.gate == lakestar::validate::GATE_PASS { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(error) => {
            eprintln!("Error: {}: {error:#}", args.file.display());
            ExitCode::from(2)
        }
    }
}

fn check(args: &ValidateArgs) -> anyhow::Result<FileReport> {
    let contract_path = match &args.contract {
        Some(path) => path.clone(),
        None => nearest_contract(&args.file).with_context(|| {
            format!("no pipeline.toml in {} or above it: give --contract FILE", folder_of(&args.file).display())
        })?,
    };
    let contract = Contract::load(&contract_path)?;
    let key = lakestar::dry_run::key_for(&contract, &lakestar_local::landing::file_key(&args.file)?);
    let dataset = lakestar::dry_run::dataset_for(&contract, &key, args.dataset.as_deref())
        .map_err(|error| match error {
            lakestar::Error::UnknownDataset { .. } => anyhow::anyhow!(
                "checked as `{key}`, it matches no dataset of {}: give --dataset NAME (one of {})",
                contract_path.display(),
                contract.datasets.iter().map(|dataset| dataset.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
            error => error.into(),
        })?
        .name
        .clone();
    let options = DryRunOptions { rejected_rows: args.rows, show_values: args.show_values };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let scratch = Scratch::start().await?;
        let size = upload(&scratch.lake, &args.file, &key).await?;
        Ok(lakestar::dry_run::dry_run(&scratch.lake, &contract, &dataset, &key, size, options).await?)
    })
}

/// Streams the file into the scratch store.
pub async fn upload(lake: &Lake, file: &Path, key: &str) -> anyhow::Result<u64> {
    let mut source = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut sink = MultipartWriter::new(lake, key, "application/octet-stream", tokio::runtime::Handle::current());
    tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        std::io::copy(&mut source, &mut sink)?;
        Ok(sink.finish()?)
    })
    .await?
}

fn folder_of(file: &Path) -> PathBuf {
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    absolute.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The nearest `pipeline.toml` in the file's folder or one above it.
fn nearest_contract(file: &Path) -> Option<PathBuf> {
    let folder = folder_of(file);
    folder.ancestors().map(|folder| folder.join("pipeline.toml")).find(|path| path.is_file())
}

fn print(args: &ValidateArgs, report: &FileReport) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    if let Some(path) = &args.report {
        std::fs::write(path, format!("{json}\n")).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{json}")?;
        return Ok(());
    }
    let gzip = if report.gzip { ", gzip" } else { "" };
    writeln!(
        out,
        "{}: dataset {} ({}{gzip}), checked as {}",
        args.file.display(),
        report.dataset,
        report.format,
        report.key
    )?;
    if !report.drift.added.is_empty() {
        writeln!(out, "  columns the contract does not declare (kept in raw): {}", report.drift.added.join(", "))?;
    }
    if !report.drift.missing.is_empty() {
        writeln!(out, "  contract columns the file does not have: {}", report.drift.missing.join(", "))?;
    }
    writeln!(out, "  rows: {} received, {} valid, {} rejected", report.received, report.valid, report.rejected)?;
    if !report.rejects_per_rule.is_empty() {
        let rules: Vec<String> =
            report.rejects_per_rule.iter().map(|(rule, count)| format!("{rule} {count}")).collect();
        writeln!(out, "  rejects per rule: {}", rules.join(", "))?;
    }
    if !report.rejected_rows.is_empty() {
        writeln!(out, "  first rejected rows:")?;
        for row in &report.rejected_rows {
            write!(out, "    line {}: {}", row.line, row.reasons.join("; "))?;
            if let Some(values) = &row.values {
                let values: Vec<String> = values
                    .iter()
                    .map(|(column, value)| format!("{column}={}", value.as_deref().unwrap_or("")))
                    .collect();
                write!(out, "  [{}]", values.join(", "))?;
            }
            writeln!(out)?;
        }
        if !args.show_values {
            writeln!(out, "  (values hidden: they may be personal data; --show-values prints them)")?;
        }
    }
    for outcome in report.rules.iter().filter(|outcome| outcome.outcome != lakestar::quality::PASSED) {
        let severity = match outcome.severity {
            lakestar::quality::Severity::Fail => "rule",
            lakestar::quality::Severity::Warn => "warn rule",
        };
        writeln!(out, "  {severity} {} ({}): {}", outcome.rule, outcome.outcome, outcome.message)?;
    }
    match report.gate.as_str() {
        lakestar::validate::GATE_PASS => writeln!(out, "  quality gate: pass")?,
        _ => writeln!(out, "  quality gate: FAIL: {}", report.cause)?,
    }
    Ok(())
}
