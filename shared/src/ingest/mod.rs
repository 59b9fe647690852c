//! The ingest stage: a landing object becomes raw Parquet parts (every source column as
//! text plus lineage), its original bytes are archived, and rows that cannot be parsed go to
//! quarantine with their reason. Streaming throughout: memory does not grow with the file.

mod csv;
mod headers;
mod json;
mod parquet;
mod raw;
mod source;
pub mod split;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;

pub use self::csv::sniff_delimiter;
pub use crate::lake::LINEAGE;
pub use crate::lake::schema::raw_schema;
pub use headers::{Drift, HeaderMapper};
pub use json::{compact as compact_json, flatten};
pub use raw::ParseReject;
pub use source::{SourceFormat, declared_format};

use crate::contract::{Contract, Dataset};
use crate::lake::{self, Lake};
use crate::run::RunDescriptor;
use crate::{Error, Result};
use raw::{RawWriter, RejectWriter, RunWriter};

/// What the ingest stage reports: the `ingest` section of the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestOutput {
    /// Keys of the raw parts, in order.
    pub raw: Vec<String>,
    /// Rows received: `raw_rows + rejected`.
    pub rows: u64,
    /// Rows written to raw.
    pub raw_rows: u64,
    /// Rows quarantined because they could not be parsed.
    pub rejected: u64,
    /// Keys of the quarantine files of those rows (none when no row was rejected).
    pub quarantine: Vec<String>,
    /// The raw source columns, in source order (contract names where headers matched).
    pub columns: Vec<String>,
    /// Columns added or missing against the contract.
    pub drift: Drift,
    /// The detected format.
    pub format: String,
    /// Whether the object was gzip-compressed.
    pub gzip: bool,
    /// Where the original bytes were archived.
    pub archive: String,
    /// How long the stage took, in milliseconds (a quality metric; not part of any data).
    #[serde(default)]
    pub duration_ms: u64,
}

/// What a format reader reports besides the rows it wrote.
#[derive(Debug)]
struct Ingested {
    columns: Vec<String>,
    drift: Drift,
}

/// A format's reader: rows into raw, unparseable rows into quarantine.
type FormatReader = fn(
    Box<dyn std::io::BufRead + Send>,
    &Dataset,
    &str,
    &mut RawWriter,
    &mut RejectWriter,
    &mut Progress,
) -> Result<Ingested>;

/// Counts rows and logs progress on long files.
#[derive(Debug)]
pub struct Progress {
    run: String,
    rows: u64,
    started: Instant,
}

impl Progress {
    const EVERY: u64 = 1_000_000;

    fn new(run: &str) -> Progress {
        Progress { run: run.to_string(), rows: 0, started: Instant::now() }
    }

    fn row(&mut self) {
        self.rows += 1;
        if self.rows.is_multiple_of(Self::EVERY) {
            let seconds = self.started.elapsed().as_secs_f64();
            tracing::info!(run = %self.run, rows = self.rows, rows_per_second = (self.rows as f64 / seconds) as u64, "Ingest progress.");
        }
    }

    fn rows(&self) -> u64 {
        self.rows
    }
}

/// Runs the ingest stage for `run`: reads the landing object, writes raw parts and parse
/// rejects, archives the original, and removes outputs an earlier attempt of the same run
/// left behind. Running it twice gives the same keys and the same bytes.
pub async fn ingest(lake: &Lake, contract: &Contract, run: &RunDescriptor) -> Result<IngestOutput> {
    let dataset = contract.dataset(&run.dataset).ok_or_else(|| Error::UnknownDataset { key: run.key.clone() })?.clone();
    tracing::info!(run = %run.id, dataset = %run.dataset, key = %run.key, size = run.size, "Ingest started.");
    let started = Instant::now();

    let body = lake.reader(&run.key, run.version.as_deref()).await?;
    let context = RunWriter { lake: lake.clone(), run: run.clone(), handle: Handle::current() };
    let mut output = tokio::task::spawn_blocking(move || ingest_blocking(SyncIoBridge::new(body), &dataset, context))
        .await
        .map_err(|error| Error::Internal(format!("the ingest task stopped: {error}")))??;

    lake.prune(&lake::raw_prefix(run), &output.raw).await?;
    lake.prune(&format!("{}{}", lake::quarantine_prefix(run), lake::PARSE_REJECTS_STEM), &output.quarantine).await?;

    output.archive = lake::archive_key(run);
    lake.copy(&run.key, run.version.as_deref(), &output.archive).await?;
    output.duration_ms = started.elapsed().as_millis() as u64;
    crate::metrics::emit(
        &[("Stage", "ingest")],
        &[("SchemaDrift", (output.drift.added.len() + output.drift.missing.len()) as f64, "Count")],
    );
    if !output.drift.added.is_empty() || !output.drift.missing.is_empty() {
        // Column names only, never values.
        tracing::warn!(run = %run.id, dataset = %run.dataset, added = ?output.drift.added, missing = ?output.drift.missing, "Schema drift: the file's columns differ from the contract's.");
    }
    let schema_contract =
        contract.dataset(&run.dataset).map(|dataset| dataset.config.schema_contract).unwrap_or_default();
    if schema_contract.columns == crate::contract::DriftMode::Freeze && !output.drift.added.is_empty() {
        return Err(Error::SchemaDrift {
            key: run.key.clone(),
            message: format!(
                "column(s) {} are not in the contract of dataset `{}`, whose schema_contract.columns is \"freeze\"; declare them under [[datasets.{}.columns]], or set schema_contract.columns to \"evolve\", \"discard_row\" or \"discard_value\", then re-drive",
                output.drift.added.join(", "),
                run.dataset,
                run.dataset
            ),
        });
    }
    tracing::info!(
        run = %run.id,
        rows = output.rows,
        raw_rows = output.raw_rows,
        rejected = output.rejected,
        parts = output.raw.len(),
        seconds = started.elapsed().as_secs_f64(),
        "Ingest finished."
    );
    Ok(output)
}

/// The synchronous core: decode the stream, parse it with the format's reader, write.
fn ingest_blocking(
    body: impl std::io::Read + Send + 'static,
    dataset: &Dataset,
    context: RunWriter,
) -> Result<IngestOutput> {
    let key = context.run.key.clone();
    let opened = source::open(body, &key, dataset).map_err(|error| Error::UnreadableFile {
        key: key.clone(),
        message: format!("cannot read the start of the file: {error}"),
    })?;
    let mut raw = RawWriter::new(context.clone());
    let mut rejects = RejectWriter::new(context.clone());
    let mut progress = Progress::new(&context.run.id);
    let format = opened.format;
    // Text formats are decoded to UTF-8 first; Parquet carries its own encoding.
    let (reader, read): (Box<dyn std::io::BufRead + Send>, FormatReader) = match format {
        SourceFormat::Csv => (source::decode(opened.reader, dataset), csv::read),
        SourceFormat::Ndjson => (source::decode(opened.reader, dataset), json::read_ndjson),
        SourceFormat::Json => (source::decode(opened.reader, dataset), json::read_json),
        SourceFormat::Parquet => (opened.reader, parquet::read),
    };
    let ingested = read(reader, dataset, &key, &mut raw, &mut rejects, &mut progress)?;
    let raw_rows = raw.rows();
    let rejected = rejects.rows();
    let raw_keys = raw.finish()?;
    let quarantine = rejects.finish()?;
    Ok(IngestOutput {
        raw: raw_keys,
        rows: raw_rows + rejected,
        raw_rows,
        rejected,
        quarantine,
        columns: ingested.columns,
        drift: ingested.drift,
        format: format.name().to_string(),
        gzip: opened.gzip,
        archive: String::new(),
        duration_ms: 0,
    })
}
