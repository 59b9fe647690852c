//! The validate stage: raw text becomes typed, checked, de-duplicated rows in `processed/`;
//! every rejected row goes to `quarantine/` as received, with all its reasons; the quality
//! gate compares the run with the contract's thresholds.
//!
//! Two streaming passes over the run's raw parts: the first reads only the key columns to
//! find duplicates, the second types, checks and writes batch by batch.

pub(crate) mod dedupe;
mod lookups;
pub(crate) mod plan;
mod quarantine;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use arrow::array::{Array, BooleanArray, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

pub use crate::types::{arrow_type, cast};
pub use dedupe::{DuplicateFinder, LoserCursor};
pub use plan::{ColumnPlan, DatasetPlan, Reasons};
use quarantine::QuarantineWriter;

use crate::contract::{Contract, Dataset, DriftMode};
use crate::ingest::IngestOutput;
use crate::lake::{self, LINEAGE, Lake, PartedWriter};
use crate::quality::{self, Evaluator, Row, RuleOutcome, View};
use crate::run::RunDescriptor;
use crate::{Error, Result};

/// Rows per processed part.
const PART_ROWS: u64 = 4 * 1024 * 1024;

/// The reject reason of a row that lost to another row of the same natural key.
pub const DUPLICATE: &str = "duplicate";

/// The reason under which ingest's parse rejects are counted.
pub const PARSE: &str = "parse";

/// What the validate stage reports: the `validate` section of the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateOutput {
    /// Keys of the processed parts.
    pub processed: Vec<String>,
    /// Keys of every quarantine file of the run (ingest's parse rejects included).
    pub quarantine: Vec<String>,
    /// Rows the run received (ingest's `rows`).
    pub received: u64,
    /// Rows written to processed.
    pub valid: u64,
    /// Rows quarantined, by ingest or by validate: `received = valid + rejected`.
    pub rejected: u64,
    /// Rejected rows per reason (a row with two reasons counts under both); `parse` counts
    /// ingest's rejects.
    pub rejects_per_rule: BTreeMap<String, u64>,
    /// Empty values per contract column, over the rows ingest could parse.
    pub nulls_per_column: BTreeMap<String, u64>,
    /// Rows rejected as duplicates of their natural key.
    pub duplicates: u64,
    /// `pass` or `fail`.
    pub gate: String,
    /// Why the gate failed (empty when it passed): the ratio, the threshold, the top rules.
    pub cause: String,
    /// How long the stage took, in milliseconds (a quality metric; not part of any data).
    #[serde(default)]
    pub duration_ms: u64,
    /// Each DQDL rule's outcome on the run.
    #[serde(default)]
    pub rules: Vec<RuleOutcome>,
    /// The `warn` rules that did not pass, each with what it measured.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What the dataset's `schema_contract` did with the run's schema drift.
    #[serde(default)]
    pub drift: DriftOutcome,
}

/// What a run's schema drift became under its dataset's `schema_contract` (the columns that
/// drifted are ingest's `drift`; rows quarantined for drift are in `rejects_per_rule`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftOutcome {
    /// Columns the run carries to processed, curated and the warehouse beyond the contract's
    /// (`evolve`): the file's new columns, then variant columns `<column>__v_text`.
    pub evolved: Vec<String>,
    /// Per column, the values its type could not read that the run kept as null
    /// (`discard_value`, or `evolve` with the text in the variant column).
    pub unreadable_values: BTreeMap<String, u64>,
    /// New columns `evolve` could not add, each with why (they stay in raw only).
    pub refused: Vec<String>,
}

/// Runs the validate stage for `run`, whose ingest reported `ingest`.
pub async fn validate(
    lake: &Lake,
    contract: &Contract,
    run: &RunDescriptor,
    ingest: &IngestOutput,
) -> Result<ValidateOutput> {
    let declared = contract.dataset(&run.dataset).ok_or_else(|| Error::UnknownDataset { key: run.key.clone() })?;
    let schema = declared.config.schema_contract;
    let mut drift = DriftOutcome::default();
    if schema.columns == DriftMode::Evolve {
        for name in &ingest.drift.added {
            match declared.refuses_evolved(name) {
                None => drift.evolved.push(name.clone()),
                Some(why) => drift.refused.push(format!("{name}: {why}")),
            }
        }
    }
    let undeclared = if schema.columns == DriftMode::DiscardRow { ingest.drift.added.clone() } else { Vec::new() };
    let dataset = declared.evolved(&drift.evolved);
    let plan = DatasetPlan::new(&dataset)?;
    let mut evaluator = Evaluator::new(quality::Rules::of(&dataset, run.time)?);
    let previous_rows =
        if evaluator.rules().reads_previous_run() { lookups::previous_run_rows(lake, run).await? } else { None };
    for reference in evaluator.rules().references() {
        let keys = lookups::reference_keys(lake, contract, run, &reference).await?;
        evaluator.provide(&reference, keys);
    }
    let quality = dataset.config.quality.clone();
    tracing::info!(run = %run.id, dataset = %run.dataset, parts = ingest.raw.len(), "Validate started.");
    let started = Instant::now();

    let spools = lake.spool(&ingest.raw).await?;

    let job = Job {
        lake: lake.clone(),
        run: run.clone(),
        handle: Handle::current(),
        dataset,
        plan,
        raw_columns: ingest.columns.clone(),
        contract: contract.clone(),
        previous_rows,
        undeclared,
        drift,
    };
    let outcome = tokio::task::spawn_blocking(move || job.execute(spools, evaluator))
        .await
        .map_err(|error| Error::Internal(format!("the validate task stopped: {error}")))??;

    lake.prune(&lake::processed_prefix(run), &outcome.processed).await?;
    lake.prune(&format!("{}{}", lake::quarantine_prefix(run), lake::REJECTS_STEM), &outcome.quarantine).await?;

    let mut rejects_per_rule = outcome.rejects_per_rule;
    if ingest.rejected > 0 {
        rejects_per_rule.insert(PARSE.to_string(), ingest.rejected);
    }
    let rejected = outcome.rejected + ingest.rejected;
    let received = ingest.rows;
    if outcome.valid + rejected != received {
        return Err(Error::CorruptObject {
            key: lake::raw_prefix(run),
            message: format!(
                "row count mismatch for run {}: ingest received {received} rows, validate accounted for {} valid + {rejected} rejected; re-run the ingest stage",
                run.id, outcome.valid
            ),
        });
    }
    let cause = gate_cause(run, received, outcome.valid, rejected, &rejects_per_rule, &quality, &outcome.rules);
    let gate = if cause.is_empty() { GATE_PASS } else { GATE_FAIL };
    let warnings = warnings(&outcome.rules);
    let mut quarantine = ingest.quarantine.clone();
    quarantine.extend(outcome.quarantine);
    let output = ValidateOutput {
        processed: outcome.processed,
        quarantine,
        received,
        valid: outcome.valid,
        rejected,
        rejects_per_rule,
        nulls_per_column: outcome.nulls_per_column,
        duplicates: outcome.duplicates,
        gate: gate.to_string(),
        cause,
        duration_ms: started.elapsed().as_millis() as u64,
        rules: outcome.rules,
        warnings,
        drift: outcome.drift,
    };
    let ratio = if received == 0 { 0.0 } else { rejected as f64 / received as f64 };
    crate::metrics::emit(
        &[("Stage", "validate")],
        &[
            ("RowsReceived", received as f64, "Count"),
            ("RowsValid", output.valid as f64, "Count"),
            ("RowsRejected", rejected as f64, "Count"),
            ("QuarantineRatio", ratio, "None"),
            ("RulesFailed", output.rules.iter().filter(|rule| rule.failed()).count() as f64, "Count"),
            ("RulesWarned", output.warnings.len() as f64, "Count"),
            ("UnreadableValues", output.drift.unreadable_values.values().sum::<u64>() as f64, "Count"),
        ],
    );
    if !output.drift.evolved.is_empty()
        || !output.drift.unreadable_values.is_empty()
        || !output.drift.refused.is_empty()
    {
        // Column names and counts only, never values.
        tracing::warn!(run = %run.id, dataset = %run.dataset, evolved = ?output.drift.evolved, unreadable_values = ?output.drift.unreadable_values, refused = ?output.drift.refused, "Schema drift handled by the schema contract.");
    }
    // Rules are the contract's text, never data: they are logged by name.
    for outcome in output.rules.iter().filter(|rule| rule.outcome != quality::PASSED) {
        tracing::warn!(run = %run.id, dataset = %run.dataset, rule = %outcome.rule, severity = ?outcome.severity, outcome = %outcome.outcome, rows_failed = outcome.rows_failed, "DQDL rule did not pass.");
    }
    tracing::info!(
        run = %run.id,
        received,
        valid = output.valid,
        rejected,
        gate = %output.gate,
        seconds = started.elapsed().as_secs_f64(),
        "Validate finished."
    );
    Ok(output)
}

/// The gate's verdict when the run passes its quality thresholds.
pub const GATE_PASS: &str = "pass";
/// The gate's verdict when it does not.
pub const GATE_FAIL: &str = "fail";

/// Evaluates the quality gate again for a run validate reported on, with the contract as it
/// is now (a re-drive after a threshold changed): the validate section with the new verdict,
/// or `QualityGateFailed` with the cause. Anything but an explicit pass of the thresholds
/// fails: the verdict is computed from the counts, never taken from the section.
pub fn enforce_gate(contract: &Contract, run: &RunDescriptor, validated: &ValidateOutput) -> Result<ValidateOutput> {
    let dataset = contract.dataset(&run.dataset).ok_or_else(|| Error::UnknownDataset { key: run.key.clone() })?;
    let quality = &dataset.config.quality;
    // The rules' outcomes under the contract as it is now: a rule since removed no longer
    // counts, one moved to `dqdl_warn` only warns.
    let current = quality::Rules::of(dataset, run.time)?;
    let outcomes: Vec<RuleOutcome> = validated
        .rules
        .iter()
        .filter_map(|outcome| {
            let rule = current.rules.iter().find(|rule| rule.text == outcome.rule)?;
            Some(RuleOutcome { severity: rule.severity, ..outcome.clone() })
        })
        .collect();
    let cause = gate_cause(
        run,
        validated.received,
        validated.valid,
        validated.rejected,
        &validated.rejects_per_rule,
        quality,
        &outcomes,
    );
    if !cause.is_empty() {
        tracing::warn!(run = %run.id, dataset = %run.dataset, rejected = validated.rejected, received = validated.received, "Quality gate failed.");
        return Err(Error::QualityGateFailed { run: run.id.clone(), cause });
    }
    tracing::info!(run = %run.id, "Quality gate passed on evaluation again.");
    Ok(ValidateOutput {
        gate: GATE_PASS.to_string(),
        cause: String::new(),
        warnings: warnings(&outcomes),
        rules: outcomes,
        ..validated.clone()
    })
}

/// The `warn` rules that did not pass, each with what it measured.
fn warnings(outcomes: &[RuleOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter(|outcome| outcome.warned())
        .map(|outcome| format!("{}: {}", outcome.rule, outcome.message))
        .collect()
}

/// Why the run fails its quality thresholds, or empty when it passes.
fn gate_cause(
    run: &RunDescriptor,
    received: u64,
    valid: u64,
    rejected: u64,
    rejects_per_rule: &BTreeMap<String, u64>,
    quality: &crate::contract::QualityConfig,
    rules: &[RuleOutcome],
) -> String {
    let ratio = if received == 0 { 0.0 } else { rejected as f64 / received as f64 };
    let mut problems = Vec::new();
    if ratio > quality.max_reject_ratio {
        problems.push(format!(
            "{rejected} of {received} rows rejected ({:.1}%), above max_reject_ratio {:.1}%",
            ratio * 100.0,
            quality.max_reject_ratio * 100.0
        ));
    }
    if valid < quality.min_rows {
        problems.push(format!("{valid} valid rows, below min_rows {}", quality.min_rows));
    }
    for outcome in rules.iter().filter(|outcome| outcome.failed()) {
        problems.push(format!(
            "rule `{}` (line {} of quality.dqdl) failed: {}",
            outcome.rule, outcome.line, outcome.message
        ));
    }
    if problems.is_empty() {
        return String::new();
    }
    let mut top: Vec<(&String, &u64)> = rejects_per_rule.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = top.iter().take(5).map(|(rule, count)| format!("{rule} {count}")).collect();
    let mut cause = format!("{} ({}): {}", run.id, run.key, problems.join("; "));
    if !top.is_empty() {
        cause.push_str(&format!("; top rules: {}", top.join(", ")));
    }
    cause.push_str(&format!("; rejected rows are in quarantine/{}/run={}/", run.dataset, run.id));
    cause
}

/// What the blocking part found.
struct Outcome {
    processed: Vec<String>,
    quarantine: Vec<String>,
    valid: u64,
    rejected: u64,
    duplicates: u64,
    rejects_per_rule: BTreeMap<String, u64>,
    nulls_per_column: BTreeMap<String, u64>,
    rules: Vec<RuleOutcome>,
    drift: DriftOutcome,
}

/// Everything the blocking part needs.
struct Job {
    lake: Lake,
    run: RunDescriptor,
    handle: Handle,
    dataset: Dataset,
    plan: DatasetPlan,
    raw_columns: Vec<String>,
    contract: Contract,
    previous_rows: Option<u64>,
    /// The file's new columns whose non-empty values quarantine their row (`discard_row`).
    undeclared: Vec<String>,
    drift: DriftOutcome,
}

/// Per column of the plan, the values pass 1 found its type cannot read: how many, and the
/// source line of the first.
type Unreadable = Vec<(u64, Option<i64>)>;

impl Job {
    fn read_error(&self, key: &str, error: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::corrupt_part(key, format!("not a readable raw part ({})", crate::error_chain(&error)))
    }

    /// The unique checks: the natural key (by the contract's dedupe rule) and each
    /// `unique` column (first wins).
    fn key_sets(&self) -> Vec<(Vec<usize>, String)> {
        let position = |name: &str| self.plan.columns.iter().position(|column| column.name == name);
        let mut sets = vec![(
            self.dataset.table.natural_key.iter().filter_map(|name| position(name)).collect(),
            DUPLICATE.to_string(),
        )];
        for (index, column) in self.dataset.columns.iter().enumerate() {
            if column.config.checks.unique
                && !(self.dataset.table.natural_key.len() == 1 && self.dataset.table.natural_key[0] == column.name)
            {
                sets.push((vec![index], format!("{}:unique", column.name)));
            }
        }
        sets
    }

    /// Pass 1: the positions of the rows that lose to another row of their key.
    /// Pass 1 also counts the rows that pass each DQDL threshold's rule, over every row.
    /// With `schema_contract.data_type` `evolve` or `freeze`, pass 1 also finds the values each
    /// column's type cannot read.
    fn find_duplicates(
        &self,
        spools: &[(String, std::fs::File)],
        evaluator: &mut Evaluator,
    ) -> Result<(Vec<(LoserCursor, String)>, Unreadable)> {
        let sets = self.key_sets();
        let mut finders: Vec<DuplicateFinder> = sets.iter().map(|_| DuplicateFinder::default()).collect();
        let counted =
            if evaluator.rules().counts_first() { evaluator.rules().first_pass_columns() } else { Vec::new() };
        let scanned: Vec<usize> =
            if matches!(self.dataset.config.schema_contract.data_type, DriftMode::Evolve | DriftMode::Freeze) {
                (0..self.plan.columns.len()).filter(|index| !self.plan.columns[*index].is_text()).collect()
            } else {
                Vec::new()
            };
        let mut unreadable: Unreadable = vec![(0, None); self.plan.columns.len()];
        let mut wanted: HashSet<&str> = sets
            .iter()
            .flat_map(|(columns, _)| columns.iter().copied())
            .chain(counted.iter().copied())
            .chain(scanned.iter().copied())
            .map(|index| self.plan.columns[index].name.as_str())
            .collect();
        if !scanned.is_empty() {
            wanted.insert("_source_line");
        }
        let mut position: u64 = 0;
        for (key, spool) in spools {
            let file = spool.try_clone().map_err(Error::temp_io)?;
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(file).map_err(|error| self.read_error(key, error))?;
            let mask = ProjectionMask::columns(builder.parquet_schema(), wanted.iter().copied());
            let reader = builder
                .with_projection(mask)
                .with_batch_size(8192)
                .build()
                .map_err(|error| self.read_error(key, error))?;
            for batch in reader {
                let batch = batch.map_err(|error| self.read_error(key, error))?;
                if !counted.is_empty() {
                    self.count_rules(&batch, &counted, evaluator);
                }
                if !scanned.is_empty() {
                    self.scan_types(&batch, &scanned, &mut unreadable);
                }
                for ((columns, _), finder) in sets.iter().zip(&mut finders) {
                    let arrays: Vec<Option<&StringArray>> =
                        columns.iter().map(|index| text_column(&batch, &self.plan.columns[*index].name)).collect();
                    let mut parts: Vec<std::borrow::Cow<'_, str>> = Vec::with_capacity(columns.len());
                    for row in 0..batch.num_rows() {
                        parts.clear();
                        for (index, array) in columns.iter().zip(&arrays) {
                            let value = array
                                .filter(|array| array.is_valid(row))
                                .and_then(|array| self.plan.columns[*index].standardise(array.value(row)));
                            match value {
                                Some(value) => parts.push(value),
                                None => break,
                            }
                        }
                        if parts.len() == columns.len() {
                            let slot = u32::try_from(position + row as u64).map_err(|_| Error::UnreadableFile {
                                key: self.run.key.clone(),
                                message: "more than 4 294 967 295 rows in one run; split the file".to_string(),
                            })?;
                            finder.add(slot, &parts)?;
                        }
                    }
                }
                position += batch.num_rows() as u64;
            }
        }
        let rule = self.dataset.table.dedupe;
        let mut out = Vec::with_capacity(sets.len());
        for (index, (finder, (_, reason))) in finders.into_iter().zip(sets).enumerate() {
            // The natural key follows the contract's rule; a `unique` column keeps its first row.
            let rule = if index == 0 { rule } else { crate::contract::Dedupe::KeepFirst };
            out.push((LoserCursor::new(finder.losers(rule)?), reason));
        }
        Ok((out, unreadable))
    }

    /// Counts, per scanned column, the values its type cannot read, and the first one's line.
    fn scan_types(&self, batch: &RecordBatch, scanned: &[usize], unreadable: &mut Unreadable) {
        let lines = batch
            .column_by_name("_source_line")
            .and_then(|column| column.as_any().downcast_ref::<arrow::array::Int64Array>());
        for &index in scanned {
            let plan = &self.plan.columns[index];
            let Some(array) = text_column(batch, &plan.name) else { continue };
            for row in 0..batch.num_rows() {
                if array.is_valid(row) && !plan.reads(array.value(row)) {
                    let (count, first) = &mut unreadable[index];
                    *count += 1;
                    if first.is_none() {
                        *first = lines.map(|lines| lines.value(row));
                    }
                }
            }
        }
    }

    /// After pass 1: fails the run with `SchemaDrift` when the contract freezes types and a
    /// value did not read; under `evolve`, adds a variant column for each optional column with
    /// unreadable values, returning (column, variant) positions in the plan.
    fn settle_types(&mut self, unreadable: &Unreadable) -> Result<Vec<(usize, usize)>> {
        let mode = self.dataset.config.schema_contract.data_type;
        let drifting: Vec<usize> = (0..unreadable.len()).filter(|index| unreadable[*index].0 > 0).collect();
        if drifting.is_empty() {
            return Ok(Vec::new());
        }
        if mode == DriftMode::Freeze {
            let columns: Vec<String> = drifting
                .iter()
                .map(|&index| {
                    let column = &self.dataset.columns[index];
                    let (count, first) = unreadable[index];
                    let at = first.map_or_else(String::new, |line| format!(", the first at line {line}"));
                    format!(
                        "{} ({count} value(s) not of type {}{at})",
                        column.name,
                        crate::types::type_name(column.data_type)
                    )
                })
                .collect();
            return Err(Error::SchemaDrift {
                key: self.run.key.clone(),
                message: format!(
                    "{}; dataset `{}` has schema_contract.data_type = \"freeze\": correct the file and drop it again, or set schema_contract.data_type to \"discard_row\" (quarantine such rows), \"discard_value\" or \"evolve\", then re-drive",
                    columns.join(", "),
                    self.run.dataset
                ),
            });
        }
        if mode != DriftMode::Evolve {
            return Ok(Vec::new());
        }
        let mut variants = Vec::new();
        for &index in &drifting {
            let column = &self.dataset.columns[index];
            if column.config.required {
                continue;
            }
            let variant = format!("{}{}", column.name, crate::contract::VARIANT_SUFFIX);
            match self.dataset.refuses_evolved(&variant) {
                None => variants.push((index, variant)),
                Some(why) => {
                    self.plan.columns[index].reject_unreadable();
                    self.drift.refused.push(format!("{variant}: {why}"));
                }
            }
        }
        let names: Vec<String> = variants.iter().map(|(_, name)| name.clone()).collect();
        let rejecting: Vec<usize> =
            (0..self.plan.columns.len()).filter(|index| self.plan.columns[*index].rejects_unreadable()).collect();
        self.dataset = self.dataset.evolved(&names);
        self.plan = DatasetPlan::new(&self.dataset)?;
        for index in rejecting {
            self.plan.columns[index].reject_unreadable();
        }
        self.drift.evolved.extend(names);
        let width = self.dataset.columns.len() - variants.len();
        Ok(variants.iter().enumerate().map(|(offset, (index, _))| (*index, width + offset)).collect())
    }

    /// Types the columns the thresholds' rules read and counts their passing rows.
    fn count_rules(&self, batch: &RecordBatch, counted: &[usize], evaluator: &mut Evaluator) {
        let rows = batch.num_rows();
        let raw: Vec<Option<&StringArray>> =
            self.plan.columns.iter().map(|column| text_column(batch, &column.name)).collect();
        let mut scratch = Reasons::new(rows);
        let typed: Vec<Option<arrow::array::ArrayRef>> = (0..self.plan.columns.len())
            .map(|index| {
                counted.contains(&index).then(|| self.plan.columns[index].apply(raw[index], rows, &mut scratch).0)
            })
            .collect();
        let row = Row { typed: typed.iter().map(|array| array.as_ref().map_or(View::Absent, View::of)).collect(), raw };
        evaluator.count(&row, rows);
    }

    fn execute(mut self, spools: Vec<(String, std::fs::File)>, mut evaluator: Evaluator) -> Result<Outcome> {
        let (mut losers, unreadable) = self.find_duplicates(&spools, &mut evaluator)?;
        let variants = self.settle_types(&unreadable)?;
        let undeclared: Vec<(String, String)> =
            self.undeclared.iter().map(|name| (name.clone(), format!("{name}:undeclared"))).collect();
        let mut kept_unreadable = vec![0u64; self.plan.columns.len()];
        evaluator.settle();
        let mut processed = PartedWriter::new(
            &self.lake,
            &lake::processed_prefix(&self.run),
            self.plan.processed_schema(),
            PART_ROWS,
            self.handle.clone(),
        );
        let mut quarantine = QuarantineWriter::new(&self.lake, &self.run, &self.raw_columns, self.handle.clone());
        let mut rejects_per_rule: HashMap<String, u64> = HashMap::new();
        let mut nulls = vec![0u64; self.plan.columns.len()];
        let (mut valid, mut rejected, mut duplicates) = (0u64, 0u64, 0u64);
        let mut position: u64 = 0;

        for (key, spool) in spools {
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(spool).map_err(|error| self.read_error(&key, error))?;
            let reader = builder.with_batch_size(8192).build().map_err(|error| self.read_error(&key, error))?;
            for batch in reader {
                let batch = batch.map_err(|error| self.read_error(&key, error))?;
                let rows = batch.num_rows();
                let inputs: Vec<Option<&StringArray>> =
                    self.plan.columns.iter().map(|column| text_column(&batch, &column.name)).collect();
                let mut reasons = Reasons::new(rows);
                let mut checked = self.plan.check(&inputs, rows, &mut reasons);
                for &(index, variant) in &variants {
                    let (array, missing) =
                        variant_values(&self.plan.columns[index], inputs[index], &checked.columns[index]);
                    checked.columns[variant] = array;
                    checked.nulls[variant] = missing;
                }
                for (name, reason) in &undeclared {
                    let Some(array) = text_column(&batch, name) else { continue };
                    for row in (0..rows).filter(|row| array.is_valid(*row) && !cast::trim(array.value(*row)).is_empty())
                    {
                        reasons.push(row, reason);
                    }
                }
                for (total, count) in nulls.iter_mut().zip(&checked.nulls) {
                    *total += count;
                }
                for (total, count) in kept_unreadable.iter_mut().zip(&checked.unreadable) {
                    *total += count;
                }
                let row = Row { typed: checked.columns.iter().map(View::of).collect(), raw: inputs.clone() };
                evaluator.judge(&row, rows, &mut reasons);
                for (set, reason) in &mut losers {
                    if set.is_empty() {
                        continue;
                    }
                    for row in 0..rows {
                        if set.contains((position + row as u64) as u32) {
                            reasons.push(row, reason);
                            if reason == DUPLICATE {
                                duplicates += 1;
                            }
                        }
                    }
                }
                position += rows as u64;

                let keep: BooleanArray = (0..rows).map(|row| Some(reasons.is_valid(row))).collect();
                evaluator.measure(&row, &keep)?;
                drop(row);
                let kept = keep.true_count();
                valid += kept as u64;
                rejected += (rows - kept) as u64;
                for row in (0..rows).filter(|row| !reasons.is_valid(*row)) {
                    for reason in reasons.get(row).split("; ") {
                        *rejects_per_rule.entry(reason.to_string()).or_default() += 1;
                    }
                }

                let mut columns = checked.columns;
                for name in LINEAGE {
                    columns.push(batch.column_by_name(name).cloned().ok_or_else(|| {
                        Error::CorruptObject {
                            key: key.clone(),
                            message: format!("lacks the lineage column {name}: it is not a raw part written by ingest; re-run the ingest stage"),
                        }
                    })?);
                }
                let typed = RecordBatch::try_new(self.plan.processed_schema(), columns)
                    .map_err(|error| Error::arrow(format!("typing a batch of {key}"), error))?;
                if kept > 0 {
                    let kept_rows = filter_record_batch(&typed, &keep)
                        .map_err(|error| Error::arrow("filtering valid rows", error))?;
                    processed.write(&kept_rows)?;
                }
                if kept < rows {
                    quarantine.write(&batch, &reasons)?;
                }
            }
        }
        let nulls_per_column =
            self.plan.columns.iter().zip(nulls).map(|(column, count)| (column.name.clone(), count)).collect();
        let context = quality::Context {
            columns: &self.raw_columns,
            contract: &self.contract,
            dataset: &self.dataset,
            previous_rows: self.previous_rows,
        };
        let rules = evaluator.finish(&context)?;
        let mut drift = self.drift.clone();
        drift.unreadable_values = self
            .plan
            .columns
            .iter()
            .zip(kept_unreadable)
            .filter(|(_, count)| *count > 0)
            .map(|(column, count)| (column.name.clone(), count))
            .collect();
        Ok(Outcome {
            processed: processed.finish()?,
            quarantine: quarantine.finish()?,
            valid,
            rejected,
            duplicates,
            rejects_per_rule: rejects_per_rule.into_iter().collect(),
            nulls_per_column,
            rules,
            drift,
        })
    }
}

/// A variant column's values: the standardised text of each value `column`'s type could not
/// read (where `typed` is null but the text is not empty), null elsewhere; and its nulls.
fn variant_values(
    column: &ColumnPlan,
    raw: Option<&StringArray>,
    typed: &arrow::array::ArrayRef,
) -> (arrow::array::ArrayRef, u64) {
    let rows = typed.len();
    let values: StringArray = (0..rows)
        .map(|row| {
            let text = raw.filter(|array| array.is_valid(row) && typed.is_null(row))?.value(row);
            column.standardise(text).map(|text| text.into_owned())
        })
        .collect();
    let missing = values.null_count() as u64;
    (std::sync::Arc::new(values), missing)
}

/// A raw batch's text column of that name, if the part has it.
fn text_column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a StringArray> {
    batch.column_by_name(name).and_then(|column| column.as_any().downcast_ref::<StringArray>())
}
