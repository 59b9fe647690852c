//! The run's quality report: what the run received, kept and rejected and why, its drift,
//! the gate's verdict and what the load did; written as `curated/_quality/<dataset>/run=<run>.json`
//! and as the run's `quality_metrics` rows, for every run that reached validate, loaded or not.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ingest::{Drift, IngestOutput};
use crate::lake::Lake;
use crate::run::RunDescriptor;
use crate::validate::{DriftOutcome, ValidateOutput};
use crate::warehouse::{Metric, TableCounts};
use crate::{Error, Result};

/// How a run ended, as its report says.
pub const LOADED: &str = "loaded";
/// A run its quality gate stopped before masking and loading.
pub const GATE_FAILED: &str = "gate_failed";

/// The run's status: loaded, every rule passing or quarantining its rows.
pub const SUCCEEDED: &str = "SUCCEEDED";
/// Loaded, with `warn` rules that did not pass.
pub const SUCCEEDED_WITH_WARNINGS: &str = "SUCCEEDED_WITH_WARNINGS";
/// Stopped by the quality gate.
pub const FAILED: &str = "FAILED";

/// The run's quality report, as written under `curated/_quality/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    /// The run.
    pub run: String,
    /// Its dataset.
    pub dataset: String,
    /// The landed object.
    pub source_key: String,
    /// When it landed (the run's time).
    #[serde(default)]
    pub landed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `loaded`, or `gate_failed` when the quality gate stopped the run.
    #[serde(default)]
    pub outcome: String,
    /// Why the gate failed (empty when it passed).
    #[serde(default)]
    pub gate_cause: String,
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
    /// Columns the file had that the contract does not know, and contract columns it lacked.
    #[serde(default)]
    pub drift: Drift,
    /// What the dataset's `schema_contract` made of the drift: evolved columns, unreadable
    /// values kept as null, new columns it could not add.
    #[serde(default)]
    pub schema_contract: DriftOutcome,
    /// Inferred members created, per dimension.
    pub inferred: BTreeMap<String, u64>,
    /// What the load did per table.
    pub tables: BTreeMap<String, TableCounts>,
    /// `SUCCEEDED`, `SUCCEEDED_WITH_WARNINGS` or `FAILED`.
    #[serde(default)]
    pub status: String,
    /// Each DQDL rule's outcome.
    #[serde(default)]
    pub rules: Vec<crate::quality::RuleOutcome>,
    /// The `warn` rules that did not pass.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The facts the load quarantined for a missing member, when it did: their Parquet key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_at_load: Option<String>,
}

impl QualityReport {
    /// The report of a run that validate reported on.
    pub fn new(run: &RunDescriptor, ingest: Option<&IngestOutput>, validated: &ValidateOutput, outcome: &str) -> Self {
        QualityReport {
            run: run.id.clone(),
            dataset: run.dataset.clone(),
            source_key: run.key.clone(),
            landed_at: Some(run.time),
            outcome: outcome.to_string(),
            gate_cause: validated.cause.clone(),
            received: validated.received,
            valid: validated.valid,
            rejected: validated.rejected,
            reject_ratio: if validated.received == 0 {
                0.0
            } else {
                validated.rejected as f64 / validated.received as f64
            },
            rejects_per_rule: validated.rejects_per_rule.clone(),
            nulls_per_column: validated.nulls_per_column.clone(),
            duplicates: validated.duplicates,
            drift: ingest.map(|ingest| ingest.drift.clone()).unwrap_or_default(),
            schema_contract: validated.drift.clone(),
            inferred: BTreeMap::new(),
            tables: BTreeMap::new(),
            status: match (outcome, validated.warnings.is_empty()) {
                (GATE_FAILED, _) => FAILED,
                (_, true) => SUCCEEDED,
                (_, false) => SUCCEEDED_WITH_WARNINGS,
            }
            .to_string(),
            rules: validated.rules.clone(),
            warnings: validated.warnings.clone(),
            quarantine_at_load: None,
        }
    }

    /// Adds what the load did: its counts per table and the inferred members; the facts it
    /// quarantined (`on_missing = "quarantine"`, in `quarantine_key`), moved from valid to
    /// rejected under their reason; and its warehouse checks' outcomes.
    pub fn add_load(
        &mut self,
        dataset: &crate::contract::Dataset,
        tables: &BTreeMap<String, TableCounts>,
        checks: &[crate::quality::RuleOutcome],
        quarantine_key: &str,
    ) {
        self.tables = tables.clone();
        self.inferred = tables
            .iter()
            .filter(|(_, counts)| counts.inferred > 0)
            .map(|(table, counts)| (table.clone(), counts.inferred))
            .collect();
        let set_aside = tables.get(&dataset.table.name).map_or(0, |counts| counts.quarantined);
        if set_aside > 0 {
            self.valid = self.valid.saturating_sub(set_aside);
            self.rejected += set_aside;
            self.reject_ratio = if self.received == 0 { 0.0 } else { self.rejected as f64 / self.received as f64 };
            for reference in &dataset.table.references {
                let count = tables.get(&reference.dimension).map_or(0, |counts| counts.quarantined);
                if count > 0 {
                    let reason = crate::warehouse::member_missing(&reference.columns, &reference.dimension);
                    *self.rejects_per_rule.entry(reason).or_default() += count;
                }
            }
            self.quarantine_at_load = Some(quarantine_key.to_string());
        }
        self.add_warehouse_checks(checks);
    }

    /// Adds the outcomes of the load's warehouse checks: a `warn` check that counted offending
    /// rows is a warning (a `fail` one would have rolled the load back).
    fn add_warehouse_checks(&mut self, checks: &[crate::quality::RuleOutcome]) {
        for check in checks {
            if check.warned() {
                self.warnings.push(format!("{}: {}", check.rule, check.message));
            }
            self.rules.push(check.clone());
        }
        if !self.warnings.is_empty() && self.status == SUCCEEDED {
            self.status = SUCCEEDED_WITH_WARNINGS.to_string();
        }
    }

    /// Writes the report to `curated/_quality/<dataset>/run=<run>.json`; returns the key.
    pub async fn write(&self, lake: &Lake) -> Result<String> {
        let key = crate::lake::quality_key(&self.dataset, &self.run);
        let mut json = serde_json::to_vec_pretty(self)
            .map_err(|error| Error::Internal(format!("serialising the quality report: {error}")))?;
        json.push(b'\n');
        lake.put_bytes(&key, json, "application/json").await?;
        Ok(key)
    }

    /// The report as `quality_metrics` rows, with each stage's seconds.
    pub fn metrics(&self, stage_milliseconds: &[(&str, u64)]) -> Vec<Metric> {
        let metric = |name: &str, dimension: &str, value: f64| Metric {
            name: name.to_string(),
            dimension: dimension.to_string(),
            value,
        };
        let mut metrics = vec![
            metric("rows_received", "", self.received as f64),
            metric("rows_valid", "", self.valid as f64),
            metric("rows_rejected", "", self.rejected as f64),
            metric("reject_ratio", "", self.reject_ratio),
            metric("duplicates", "", self.duplicates as f64),
            metric("gate_failed", "", if self.outcome == GATE_FAILED { 1.0 } else { 0.0 }),
            metric("drift_added", "", self.drift.added.len() as f64),
            metric("drift_missing", "", self.drift.missing.len() as f64),
            metric("drift_evolved", "", self.schema_contract.evolved.len() as f64),
        ];
        metrics.extend(
            self.schema_contract
                .unreadable_values
                .iter()
                .map(|(column, count)| metric("drift_unreadable", column, *count as f64)),
        );
        metrics.extend(self.rejects_per_rule.iter().map(|(rule, count)| metric("rejects", rule, *count as f64)));
        let failed: Vec<_> = self.rules.iter().filter(|outcome| outcome.failed()).collect();
        let warned: Vec<_> = self.rules.iter().filter(|outcome| outcome.warned()).collect();
        metrics.push(metric("rules_failed", "", failed.len() as f64));
        metrics.push(metric("rules_warned", "", warned.len() as f64));
        metrics.extend(failed.iter().map(|outcome| metric("rule_failed", &outcome.rule, 1.0)));
        metrics.extend(warned.iter().map(|outcome| metric("rule_warned", &outcome.rule, 1.0)));
        metrics.extend(self.nulls_per_column.iter().map(|(column, count)| metric("nulls", column, *count as f64)));
        for (table, counts) in &self.tables {
            metrics.push(metric("inserted", table, counts.inserted as f64));
            metrics.push(metric("updated", table, counts.updated as f64));
            metrics.push(metric("unchanged", table, counts.unchanged as f64));
            if counts.inferred > 0 {
                metrics.push(metric("inferred", table, counts.inferred as f64));
            }
        }
        for (stage, milliseconds) in stage_milliseconds {
            metrics.push(metric("duration_seconds", stage, *milliseconds as f64 / 1000.0));
        }
        metrics
    }
}
