//! The lake bucket's key layout: every key a stage reads or writes is built here, from the
//! run it belongs to, so re-running a stage writes the same keys.

use crate::run::RunDescriptor;

/// The contract's key in the lake bucket.
pub const CONFIG_KEY: &str = "config/pipeline.toml";

/// The key of an extraction source's state: its watermark and its extractions' pages.
pub fn source_state_key(source: &str) -> String {
    format!("state/sources/{source}.json")
}

/// `archive/<dataset>/ingest_date=<date>/run=<run>/<file>`: the original bytes.
pub fn archive_key(run: &RunDescriptor) -> String {
    format!("archive/{}/ingest_date={}/run={}/{}", run.dataset, run.ingest_date(), run.id, run.file_name())
}

/// `raw/<dataset>/ingest_date=<date>/run=<run>/`: the folder of the run's raw parts.
pub fn raw_prefix(run: &RunDescriptor) -> String {
    format!("raw/{}/ingest_date={}/run={}/", run.dataset, run.ingest_date(), run.id)
}

/// `processed/<dataset>/ingest_date=<date>/run=<run>/`: the folder of the run's validated parts.
pub fn processed_prefix(run: &RunDescriptor) -> String {
    format!("processed/{}/ingest_date={}/run={}/", run.dataset, run.ingest_date(), run.id)
}

/// `quarantine/<dataset>/run=<run>/`: the folder of the run's rejected rows.
pub fn quarantine_prefix(run: &RunDescriptor) -> String {
    format!("quarantine/{}/run={}/", run.dataset, run.id)
}

/// The stem of ingest's parse rejects in the run's quarantine folder.
pub const PARSE_REJECTS_STEM: &str = "ingest_rejected.";

/// The stem of validate's rejects in the run's quarantine folder.
pub const REJECTS_STEM: &str = "rejected.";

/// The key of the facts a run's load quarantined for a member their dimension lacks
/// (`on_missing = "quarantine"`): curated rows with their `_reasons`.
pub fn load_quarantine_key(run: &RunDescriptor) -> String {
    format!("{}load_rejected.parquet", quarantine_prefix(run))
}

/// `quarantine/<dataset>/run=<run>/ingest_rejected.{parquet,csv}`.
pub fn parse_reject_keys(run: &RunDescriptor) -> [String; 2] {
    let prefix = quarantine_prefix(run);
    [format!("{prefix}{PARSE_REJECTS_STEM}parquet"), format!("{prefix}{PARSE_REJECTS_STEM}csv")]
}

/// `quarantine/<dataset>/run=<run>/rejected.{parquet,csv}`.
pub fn reject_keys(run: &RunDescriptor) -> [String; 2] {
    let prefix = quarantine_prefix(run);
    [format!("{prefix}{REJECTS_STEM}parquet"), format!("{prefix}{REJECTS_STEM}csv")]
}

/// `curated/<table>/`: the folder of a star table.
pub fn curated_prefix(table: &str) -> String {
    format!("curated/{table}/")
}

/// `curated/<table>/[<partition>/]run=<run>/`: the folder of one run's parts of a star table
/// (`partition` empty for an unpartitioned table).
pub fn curated_run_prefix(table: &str, partition: &str, run_id: &str) -> String {
    let table = curated_prefix(table);
    match partition {
        "" => format!("{table}run={run_id}/"),
        partition => format!("{table}{partition}/run={run_id}/"),
    }
}

/// `curated/_manifests/<table>/run=<run>.json`: the curated parts one run wrote to a table.
pub fn curated_manifest_key(table: &str, run_id: &str) -> String {
    format!("curated/_manifests/{table}/run={run_id}.json")
}

/// `curated/_quality/<dataset>/run=<run>.json`: the run's quality report.
pub fn quality_key(dataset: &str, run_id: &str) -> String {
    format!("curated/_quality/{dataset}/run={run_id}.json")
}

/// The name of the `index`-th part file of a folder: `part-00000.parquet`.
pub fn part_name(index: usize) -> String {
    format!("part-{index:05}.parquet")
}
