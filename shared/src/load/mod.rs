//! The load stage: a run's curated star table into the warehouse, then the run's quality
//! report — as warehouse rows (in the load's transaction), as embedded-metric-format lines,
//! and as `curated/_quality/<dataset>/run=<run>.json`. A run its quality gate stopped gets
//! its report all the same ([`record_rejected_run`]).

mod report;

pub use report::{FAILED, GATE_FAILED, LOADED, QualityReport, SUCCEEDED, SUCCEEDED_WITH_WARNINGS};

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::contract::Contract;
use crate::ingest::IngestOutput;
use crate::lake::Lake;
use crate::lake::glue::GlueCatalog;
use crate::mask::MaskOutput;
use crate::run::RunDescriptor;
use crate::validate::ValidateOutput;
use crate::warehouse::{TableCounts, Warehouse};
use crate::{Error, Result};

/// What the load stage reports: the `load` section of the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadOutput {
    /// Inserted / updated / unchanged rows per table (inferred members under their dimension).
    pub tables: BTreeMap<String, TableCounts>,
    /// The key of the run's quality report.
    pub quality: String,
    /// How long the load took, in milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
    /// The `warn` warehouse checks that counted offending rows, each with its count.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// What the load stage reads of the stages before it: their sections of the state.
#[derive(Debug, Clone, Copy)]
pub struct Upstream<'a> {
    /// Ingest's section, for its duration (absent in hand-made states).
    pub ingest: Option<&'a IngestOutput>,
    /// Validate's section: the counts of the quality report.
    pub validated: &'a ValidateOutput,
    /// Mask's section: the curated keys to load.
    pub masked: &'a MaskOutput,
}

/// Runs the load stage for `run`, whose earlier stages reported `upstream`; then brings the
/// curated tables' definitions in `catalog` up to date (after the commit, so a re-drive of a
/// failed catalog call finds the run loaded and only writes the catalog).
pub async fn load(
    lake: &Lake,
    contract: &Contract,
    warehouse: &Warehouse,
    catalog: Option<&GlueCatalog>,
    run: &RunDescriptor,
    upstream: Upstream<'_>,
) -> Result<LoadOutput> {
    let started = Instant::now();
    let Upstream { ingest, validated, masked } = upstream;
    let dataset = contract.dataset(&run.dataset).ok_or_else(|| Error::UnknownDataset { key: run.key.clone() })?;
    let keys = match masked.curated.get(&dataset.table.name) {
        Some(keys) => keys.clone(),
        None if masked.manifest.is_empty() => Vec::new(),
        None => crate::mask::CuratedManifest::read(lake, &masked.manifest).await?.parts,
    };
    tracing::info!(run = %run.id, dataset = %run.dataset, parts = keys.len(), "Load started.");
    let parts = lake.spool(&keys).await?;
    crate::warehouse::check_parts(&parts)?;
    let files = parts.into_iter().map(|(_, file)| file).collect();

    let stage_durations = [
        ("ingest", ingest.map_or(0, |ingest| ingest.duration_ms)),
        ("validate", validated.duration_ms),
        ("mask", masked.duration_ms),
    ];
    let mut report = QualityReport::new(run, ingest, validated, LOADED);
    let quarantine_key = crate::lake::load_quarantine_key(run);
    let (tables, checks) = warehouse
        .load(
            contract,
            run,
            files,
            |tables, checks| {
                let mut with_counts = report.clone();
                with_counts.add_load(dataset, tables, checks, &quarantine_key);
                with_counts.metrics(&stage_durations)
            },
            async |file| {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut { file }, &mut bytes).map_err(Error::temp_io)?;
                lake.put_bytes(&quarantine_key, bytes, "application/vnd.apache.parquet").await
            },
        )
        .await?;
    report.add_load(dataset, &tables, &checks, &quarantine_key);
    let key = report.write(lake).await?;
    if let Some(catalog) = catalog {
        let dates = warehouse.calendar_range().await?;
        let definitions = crate::lake::glue::catalog_tables(contract, lake.bucket(), dates)?;
        let sync = catalog.sync(&definitions).await?;
        tracing::info!(
            run = %run.id,
            database = %catalog.database(),
            created = sync.created,
            updated = sync.updated,
            unchanged = sync.unchanged,
            "Catalog tables up to date."
        );
    }

    let fact = tables.get(&dataset.table.name).copied().unwrap_or_default();
    let inferred: u64 = report.inferred.values().sum();
    crate::metrics::emit(
        &[("Dataset", run.dataset.as_str()), ("Stage", "load")],
        &[
            ("RowsInserted", fact.inserted as f64, "Count"),
            ("RowsUpdated", fact.updated as f64, "Count"),
            ("RowsUnchanged", fact.unchanged as f64, "Count"),
            ("InferredMembers", inferred as f64, "Count"),
            ("LoadDuration", started.elapsed().as_secs_f64(), "Seconds"),
        ],
    );
    tracing::info!(
        run = %run.id,
        table = %dataset.table.name,
        inserted = fact.inserted,
        updated = fact.updated,
        unchanged = fact.unchanged,
        inferred,
        seconds = started.elapsed().as_secs_f64(),
        "Load finished."
    );
    let warnings = checks
        .iter()
        .filter(|check| check.warned())
        .map(|check| format!("{}: {}", check.rule, check.message))
        .collect();
    Ok(LoadOutput { tables, quality: key, duration_ms: started.elapsed().as_millis() as u64, warnings })
}

/// Records a run its quality gate stopped: its report (`outcome` `gate_failed`, with the
/// gate's cause) under `curated/_quality/` and its `quality_metrics` rows, so that quality
/// over time includes exactly the bad deliveries. Nothing is loaded.
pub async fn record_rejected_run(
    lake: &Lake,
    warehouse: &Warehouse,
    run: &RunDescriptor,
    ingest: Option<&IngestOutput>,
    validated: &ValidateOutput,
) -> Result<LoadOutput> {
    let started = Instant::now();
    let report = QualityReport::new(run, ingest, validated, GATE_FAILED);
    let durations = [("ingest", ingest.map_or(0, |ingest| ingest.duration_ms)), ("validate", validated.duration_ms)];
    warehouse.record_quality(run, &report.metrics(&durations)).await?;
    let key = report.write(lake).await?;
    tracing::info!(run = %run.id, dataset = %run.dataset, rejected = report.rejected, "Recorded a run the quality gate stopped.");
    Ok(LoadOutput {
        tables: BTreeMap::new(),
        quality: key,
        duration_ms: started.elapsed().as_millis() as u64,
        warnings: Vec::new(),
    })
}
