//! A file checked without loading it: the ingest and validate stages run over one object of
//! a scratch lake (never the user's), and what they found becomes a report: the dataset
//! matched, drift, rows received, valid and rejected, rejects per rule, the first rejected
//! rows with their lines and reasons, and the quality gate's verdict. Values of rejected rows
//! are only reported when asked for: they may be personal data.

use std::collections::BTreeMap;

use arrow::array::{Array, Int64Array, StringArray};
use serde::{Deserialize, Serialize};

use crate::contract::Contract;
use crate::ingest::Drift;
use crate::lake::Lake;
use crate::run::RunDescriptor;
use crate::{Error, Result};

/// A lake of its own in a temporary folder, removed when dropped: what `lakestar validate`,
/// `lakestar infer` and the check function run the stages in, so nothing of the user's is
/// written.
#[cfg(feature = "embedded-s3")]
#[derive(Debug)]
pub struct Scratch {
    /// The scratch lake.
    pub lake: Lake,
    _s3: crate::lake::EmbeddedS3,
    _folder: tempfile::TempDir,
}

#[cfg(feature = "embedded-s3")]
impl Scratch {
    /// Starts an embedded S3 over a new temporary folder, with one bucket.
    pub async fn start() -> Result<Scratch> {
        const BUCKET: &str = "lakestar-check";
        let folder = tempfile::tempdir().map_err(Error::temp_io)?;
        let s3 = crate::lake::EmbeddedS3::start(&folder.path().join("s3")).await?;
        s3.create_bucket(BUCKET).await?;
        let lake = Lake::new(s3.client(), BUCKET);
        Ok(Scratch { lake, _s3: s3, _folder: folder })
    }
}

/// What a check reports, as `lakestar validate --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileReport {
    /// The key the file was checked as (`landing/…`).
    pub key: String,
    /// The dataset it belongs to.
    pub dataset: String,
    /// The detected format (`csv`, `json`, `ndjson`, `parquet`).
    pub format: String,
    /// Whether it was gzip-compressed.
    pub gzip: bool,
    /// Columns the file has that the contract does not declare, and the reverse.
    pub drift: Drift,
    /// Rows received: `valid + rejected`.
    pub received: u64,
    /// Rows that would be kept.
    pub valid: u64,
    /// Rows that would be quarantined.
    pub rejected: u64,
    /// Rejected rows per reason (a row with two reasons counts under both; `parse` for rows
    /// that could not be read).
    pub rejects_per_rule: BTreeMap<String, u64>,
    /// Rows rejected as duplicates of their natural key.
    pub duplicates: u64,
    /// Empty values per contract column.
    pub nulls_per_column: BTreeMap<String, u64>,
    /// `pass` or `fail`.
    pub gate: String,
    /// Why the gate fails (empty when it passes).
    pub cause: String,
    /// The first rejected rows, by line.
    pub rejected_rows: Vec<RejectedRow>,
    /// Each DQDL rule's outcome on the file.
    #[serde(default)]
    pub rules: Vec<crate::quality::RuleOutcome>,
    /// The `dqdl_warn` rules that did not pass.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// One rejected row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRow {
    /// Its line (for JSON, the record's number; for Parquet, the row's).
    pub line: i64,
    /// Why it was rejected.
    pub reasons: Vec<String>,
    /// Its values by column (the raw text for a row that could not be parsed); only when
    /// values were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, Option<String>>>,
}

/// What to report besides the counts.
#[derive(Debug, Clone, Copy)]
pub struct DryRunOptions {
    /// How many rejected rows to list.
    pub rejected_rows: usize,
    /// Whether to include their values.
    pub show_values: bool,
}

impl Default for DryRunOptions {
    fn default() -> Self {
        DryRunOptions { rejected_rows: 10, show_values: false }
    }
}

/// The key a file named outside any delivery folder is checked as: `landing/<name>` when a
/// dataset matches that, else `landing/check/<name>` when one matches that (patterns such as
/// `landing/*/sales*.csv` expect a delivery folder), else `key` as it is.
pub fn key_for(contract: &Contract, key: &str) -> String {
    let Some(name) = key.strip_prefix("landing/").filter(|name| !name.contains('/')) else {
        return key.to_string();
    };
    let folder = format!("landing/check/{name}");
    if contract.dataset_for_key(key).is_err() && contract.dataset_for_key(&folder).is_ok() {
        folder
    } else {
        key.to_string()
    }
}

/// The dataset `key` belongs to: the one named, else the one whose patterns match it.
pub fn dataset_for<'c>(contract: &'c Contract, key: &str, named: Option<&str>) -> Result<&'c crate::contract::Dataset> {
    match named {
        Some(name) => contract.dataset(name).ok_or_else(|| {
            let names: Vec<&str> = contract.datasets.iter().map(|dataset| dataset.name.as_str()).collect();
            Error::Configuration(format!("the contract has no dataset `{name}`; it has {}", names.join(", ")))
        }),
        None => contract.dataset_for_key(key),
    }
}

/// Checks the object `key` of `scratch` (a lake the check may write to and nobody reads) as a
/// file of `dataset`: ingest and validate as a run would, nothing loaded.
pub async fn dry_run(
    scratch: &Lake,
    contract: &Contract,
    dataset: &str,
    key: &str,
    size: u64,
    options: DryRunOptions,
) -> Result<FileReport> {
    let run = RunDescriptor::new(dataset, scratch.bucket(), key, None, None, size, chrono::Utc::now());
    let ingested = crate::ingest::ingest(scratch, contract, &run).await?;
    let validated = crate::validate::validate(scratch, contract, &run, &ingested).await?;
    let mut rejected_rows = Vec::new();
    for quarantine in validated.quarantine.iter().filter(|key| key.ends_with(".parquet")) {
        for (key, file) in scratch.spool(std::slice::from_ref(quarantine)).await? {
            rejected_rows.extend(read_rejects(&key, file, options)?);
        }
    }
    rejected_rows.sort_by_key(|row| row.line);
    rejected_rows.truncate(options.rejected_rows);
    tracing::info!(
        key,
        dataset,
        received = validated.received,
        rejected = validated.rejected,
        gate = %validated.gate,
        "File checked."
    );
    Ok(FileReport {
        key: key.to_string(),
        dataset: dataset.to_string(),
        format: ingested.format,
        gzip: ingested.gzip,
        drift: ingested.drift,
        received: validated.received,
        valid: validated.valid,
        rejected: validated.rejected,
        rejects_per_rule: validated.rejects_per_rule,
        duplicates: validated.duplicates,
        nulls_per_column: validated.nulls_per_column,
        gate: validated.gate,
        cause: validated.cause,
        rejected_rows,
        rules: validated.rules,
        warnings: validated.warnings,
    })
}

/// The first rejected rows of a quarantine file (validate's or ingest's parse rejects).
fn read_rejects(key: &str, file: std::fs::File, options: DryRunOptions) -> Result<Vec<RejectedRow>> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|builder| builder.with_batch_size(options.rejected_rows.max(1)).build())
        .map_err(|error| Error::corrupt_part(key, error.to_string()))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|error| Error::corrupt_part(key, error.to_string()))?;
        let text =
            |name: &str| batch.column_by_name(name).and_then(|column| column.as_any().downcast_ref::<StringArray>());
        let lines =
            batch.column_by_name("_source_line").and_then(|column| column.as_any().downcast_ref::<Int64Array>());
        let (Some(lines), Some(reasons)) = (lines, text("_reasons")) else {
            return Err(Error::corrupt_part(key, "a quarantine file without `_source_line` and `_reasons`"));
        };
        let schema = batch.schema();
        for row in 0..batch.num_rows() {
            let values = options.show_values.then(|| {
                schema
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, field)| !field.name().starts_with('_') || field.name() == "_raw")
                    .filter_map(|(index, field)| {
                        let column = batch.column(index).as_any().downcast_ref::<StringArray>()?;
                        let value = column.is_valid(row).then(|| column.value(row).to_string());
                        Some((field.name().clone(), value))
                    })
                    .collect()
            });
            rows.push(RejectedRow {
                line: lines.value(row),
                reasons: split_reasons(if reasons.is_valid(row) { reasons.value(row) } else { "" }),
                values,
            });
        }
        if rows.len() >= options.rejected_rows {
            break;
        }
    }
    Ok(rows)
}

/// The reasons of a quarantined row, as its `_reasons` column lists them.
fn split_reasons(text: &str) -> Vec<String> {
    text.split(';').map(str::trim).filter(|reason| !reason.is_empty()).map(str::to_string).collect()
}
