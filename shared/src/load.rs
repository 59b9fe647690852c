//! The load stage: a run's curated star table into the warehouse, then the run's quality
//! report — as warehouse rows (in the load's transaction), as embedded-metric-format lines,
//! and as `curated/_quality/<dataset>/run=<run>.json`.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::contract::Contract;
use crate::ingest::IngestOutput;
use crate::lake::Lake;
use crate::mask::MaskOutput;
use crate::run::RunDescriptor;
use crate::validate::ValidateOutput;
use crate::warehouse::{Metric, TableCounts, Warehouse};
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
}

/// The run's quality report, as written under `curated/_quality/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// The run.
    pub run: String,
    /// Its dataset.
    pub dataset: String,
    /// The landed object.
    pub source_key: String,
    /// Rows the file held.
    pub received: u64,
    /// Rows that passed validation.
    pub valid: u64,
    /// Rows quarantined.
    pub rejected: u64,
    /// `rejected / received`.
    pub reject_ratio: f64,
    /// Rejected rows per rule (a row with two reasons counts under both).
    pub rejects_per_rule: BTreeMap<String, u64>,
    /// Empty values per contract column.
    pub nulls_per_column: BTreeMap<String, u64>,
    /// Rows rejected as duplicates of their natural key.
    pub duplicates: u64,
    /// Inferred members created, per dimension.
    pub inferred: BTreeMap<String, u64>,
    /// What the load did per table.
    pub tables: BTreeMap<String, TableCounts>,
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

/// Runs the load stage for `run`, whose earlier stages reported `upstream`.
pub async fn load(
    lake: &Lake,
    contract: &Contract,
    warehouse: &Warehouse,
    run: &RunDescriptor,
    upstream: Upstream<'_>,
) -> Result<LoadOutput> {
    let started = Instant::now();
    let Upstream { ingest, validated, masked } = upstream;
    let dataset = contract.dataset(&run.dataset).ok_or_else(|| Error::UnknownDataset { key: run.key.clone() })?;
    let keys = masked.curated.get(&dataset.table.name).cloned().unwrap_or_default();
    tracing::info!(run = %run.id, dataset = %run.dataset, parts = keys.len(), "Load started.");
    let files = lake.spool(&keys).await?.into_iter().map(|(_, file)| file).collect();

    let stage_durations = [
        ("ingest", ingest.map_or(0, |ingest| ingest.duration_ms)),
        ("validate", validated.duration_ms),
        ("mask", masked.duration_ms),
    ];
    let mut report = QualityReport {
        run: run.id.clone(),
        dataset: run.dataset.clone(),
        source_key: run.key.clone(),
        received: validated.received,
        valid: validated.valid,
        rejected: validated.rejected,
        reject_ratio: if validated.received == 0 { 0.0 } else { validated.rejected as f64 / validated.received as f64 },
        rejects_per_rule: validated.rejects_per_rule.clone(),
        nulls_per_column: validated.nulls_per_column.clone(),
        duplicates: validated.duplicates,
        inferred: BTreeMap::new(),
        tables: BTreeMap::new(),
    };
    let tables = warehouse
        .load(contract, run, files, |tables| {
            let mut with_counts = report.clone();
            with_counts.tables = tables.clone();
            let mut metrics = metrics_of(&with_counts);
            for (stage, milliseconds) in stage_durations {
                metrics.push(Metric {
                    name: "duration_seconds".to_string(),
                    dimension: stage.to_string(),
                    value: milliseconds as f64 / 1000.0,
                });
            }
            metrics
        })
        .await?;
    report.inferred = tables
        .iter()
        .filter(|(_, counts)| counts.inferred > 0)
        .map(|(table, counts)| (table.clone(), counts.inferred))
        .collect();
    report.tables = tables.clone();

    let key = crate::lake::quality_key(&run.dataset, &run.id);
    let mut json = serde_json::to_vec_pretty(&report)
        .map_err(|error| Error::Internal(format!("serialising the quality report: {error}")))?;
    json.push(b'\n');
    lake.put_bytes(&key, json, "application/json").await?;

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
    Ok(LoadOutput { tables, quality: key, duration_ms: started.elapsed().as_millis() as u64 })
}

/// The report as `quality_metrics` rows.
fn metrics_of(report: &QualityReport) -> Vec<Metric> {
    let metric = |name: &str, dimension: &str, value: f64| Metric {
        name: name.to_string(),
        dimension: dimension.to_string(),
        value,
    };
    let mut metrics = vec![
        metric("rows_received", "", report.received as f64),
        metric("rows_valid", "", report.valid as f64),
        metric("rows_rejected", "", report.rejected as f64),
        metric("reject_ratio", "", report.reject_ratio),
        metric("duplicates", "", report.duplicates as f64),
    ];
    metrics.extend(report.rejects_per_rule.iter().map(|(rule, count)| metric("rejects", rule, *count as f64)));
    metrics.extend(report.nulls_per_column.iter().map(|(column, count)| metric("nulls", column, *count as f64)));
    for (table, counts) in &report.tables {
        metrics.push(metric("inserted", table, counts.inserted as f64));
        metrics.push(metric("updated", table, counts.updated as f64));
        metrics.push(metric("unchanged", table, counts.unchanged as f64));
        if counts.inferred > 0 {
            metrics.push(metric("inferred", table, counts.inferred as f64));
        }
    }
    metrics
}
