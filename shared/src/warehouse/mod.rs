//! The warehouse: PostgreSQL (RDS in the cloud, any `postgres://` URL offline) or SQLite (the
//! offline default). Lakestar's own tables come from migrations; the star tables are created
//! from the contract and evolved additively; [`Warehouse::load`] merges one run's curated
//! rows in one transaction, serialised per table.

mod audit;
mod binary;
mod bulk;
mod catalog;
mod cells;
pub mod codec;
mod connect;
mod curated;
pub mod dates;
pub mod ddl;
mod dimension;
mod fact;
mod marts;
pub mod scd;
mod sql;
mod staging;
mod steps;
pub mod text;
mod tx;

use std::collections::BTreeMap;

use sqlx::{PgPool, SqlitePool};

pub use audit::{Metric, TableCounts};
pub use connect::postgres_options;
pub use curated::check_parts;
pub use dates::date_key;
pub use ddl::Dialect;
pub use fact::rows::member_missing;
pub use staging::CopyFormat;
use tx::Tx;

use crate::contract::{Contract, Dataset};
use crate::quality::RuleOutcome;
use crate::quality::rules::Severity;
use crate::run::RunDescriptor;
use crate::{Error, Result};

/// A connection pool to one warehouse.
#[derive(Debug, Clone)]
pub enum Warehouse {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

/// A run the warehouse has loaded already (a re-drive of a load that committed before its
/// state was recorded): nothing is loaded again, and the load reports what it did then.
/// A run loaded before: its recorded counts, and its `warn` warehouse checks evaluated again
/// (its `fail` checks passed when it committed).
async fn already_loaded(
    tx: &mut Tx,
    dataset: &Dataset,
    run: &RunDescriptor,
    recorded: BTreeMap<String, TableCounts>,
) -> Result<Loaded> {
    tracing::info!(run = %run.id, dataset = %run.dataset, "The run was loaded already: its recorded result is reported.");
    Ok((recorded, warehouse_checks(tx, dataset, run, true).await?))
}

/// What a load reports: the counts per table, and its warehouse checks' outcomes.
pub type Loaded = (BTreeMap<String, TableCounts>, Vec<RuleOutcome>);

/// The contract's warehouse checks, on the load's rows inside its transaction: a `fail` check
/// that counts offending rows rolls it all back (the transaction is dropped uncommitted); a
/// `warn` check's count is reported. `warn_only` skips the `fail` checks.
async fn warehouse_checks(
    tx: &mut Tx,
    dataset: &Dataset,
    run: &RunDescriptor,
    warn_only: bool,
) -> Result<Vec<RuleOutcome>> {
    let mut outcomes = Vec::new();
    for check in &dataset.config.quality.warehouse {
        if warn_only && check.severity == Severity::Fail {
            continue;
        }
        let sql = check.sql.trim().trim_end_matches(';');
        let what = format!("the warehouse check `{}`", check.name);
        let offending = tx.fetch_count(&what, format!("SELECT CAST(({sql}) AS TEXT)")).await?;
        if offending != 0 && check.severity == Severity::Fail {
            tracing::warn!(run = %run.id, check = %check.name, offending, "Warehouse check failed; the load is rolled back.");
            return Err(Error::QualityGateFailed {
                run: run.id.clone(),
                cause: format!(
                    "{} ({}): the warehouse check `{}` counted {offending} offending row(s) after the load, which was rolled back; fix the data and process the file again, or fix the check and re-drive the load",
                    run.id, run.key, check.name
                ),
            });
        }
        if offending != 0 {
            tracing::warn!(run = %run.id, check = %check.name, offending, "Warehouse check warned.");
        }
        outcomes.push(RuleOutcome {
            rule: format!("warehouse check {}", check.name),
            line: 0,
            severity: check.severity,
            outcome: if offending == 0 { crate::quality::PASSED } else { crate::quality::FAILED }.to_string(),
            rows_failed: u64::try_from(offending).unwrap_or(0),
            measure: Some(offending as f64),
            message: format!("{offending} offending row(s) after the load"),
        });
    }
    Ok(outcomes)
}

impl Warehouse {
    /// The warehouse's SQL dialect.
    pub fn dialect(&self) -> Dialect {
        match self {
            Warehouse::Postgres(_) => Dialect::Postgres,
            Warehouse::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Begins a transaction; SQLite's takes the write lock at once (`BEGIN IMMEDIATE`).
    async fn begin(&self) -> Result<Tx> {
        match self {
            Warehouse::Postgres(pool) => pool.begin().await.map(Tx::Postgres),
            Warehouse::Sqlite(pool) => pool.begin_with("BEGIN IMMEDIATE").await.map(Tx::Sqlite),
        }
        .map_err(|error| Error::database("beginning a transaction", error))
    }

    /// Loads one run's curated parts (`files`, the Parquet of `run.dataset`'s star table) in
    /// one transaction holding the locks of every table it writes: the dimension's SCD merge,
    /// or the fact's upsert with its inferred members and `dim_date` rows; then the run
    /// registry, the load audit and the quality metrics `metrics` makes from the counts. Facts
    /// set aside for a missing member (`on_missing = "quarantine"`) are handed to `quarantine`
    /// as a Parquet file before the commit.
    pub async fn load(
        &self,
        contract: &Contract,
        run: &RunDescriptor,
        files: Vec<std::fs::File>,
        metrics: impl FnOnce(&BTreeMap<String, TableCounts>, &[RuleOutcome]) -> Vec<Metric>,
        quarantine: impl AsyncFnOnce(std::fs::File) -> Result<()>,
    ) -> Result<Loaded> {
        let dataset = contract.dataset(&run.dataset).ok_or_else(|| Error::UnknownDataset { key: run.key.clone() })?;
        // The run's own table and the dimensions it references: never another dataset's.
        let mut touched = vec![dataset];
        touched.extend(
            dataset
                .table
                .references
                .iter()
                .filter_map(|reference| contract.datasets.iter().find(|other| other.table.name == reference.dimension)),
        );
        self.ensure_tables_of(contract, &touched).await?;
        let started = chrono::Utc::now();
        let mut tx = self.begin().await?;
        let mut tables = BTreeMap::new();
        let mut set_aside = None;
        if dataset.table.kind == crate::contract::TableKind::Dimension {
            // The facts that reference the dimension are locked too: they are keyed again when
            // its history changes under them.
            let facts = dimension::rekey::referencing_facts(contract, &dataset.table.name);
            let mut locked: Vec<&str> = facts.iter().map(|fact| fact.table.name.as_str()).collect();
            locked.push(dataset.table.name.as_str());
            tx.lock(&locked).await?;
            if let Some(recorded) = audit::loaded(&mut tx, run).await? {
                return already_loaded(&mut tx, dataset, run, recorded).await;
            }
            let run_time = run.time.timestamp_micros();
            let (counts, changed) =
                dimension::load_dimension(&mut tx, dataset, contract, &run.id, run_time, files).await?;
            tables.insert(dataset.table.name.clone(), counts);
            for (fact, rekeyed) in dimension::rekey::rekey_facts(&mut tx, contract, dataset, &changed)
                .await?
                .into_iter()
                .filter(|(_, rekeyed)| *rekeyed > 0)
            {
                tables.insert(fact, TableCounts { rekeyed, ..TableCounts::default() });
            }
        } else {
            let mut locked: Vec<&str> =
                dataset.table.references.iter().map(|reference| reference.dimension.as_str()).collect();
            locked.push(dataset.table.name.as_str());
            tx.lock(&locked).await?;
            if let Some(recorded) = audit::loaded(&mut tx, run).await? {
                return already_loaded(&mut tx, dataset, run, recorded).await;
            }
            let (counts, inferred, calendar, quarantine) =
                fact::load_fact(&mut tx, dataset, contract, &run.id, files).await?;
            tables.insert(dataset.table.name.clone(), counts);
            for (dimension, added) in inferred {
                tables.insert(dimension, TableCounts { inferred: added, ..TableCounts::default() });
            }
            for (dimension, count) in &quarantine.per_dimension {
                tables.entry(dimension.clone()).or_default().quarantined = *count;
            }
            tables.insert("dim_date".to_string(), calendar);
            set_aside = quarantine.finish()?;
        }
        marts::refresh_marts(&mut tx, contract, &dataset.table.name).await?;
        let checks = warehouse_checks(&mut tx, dataset, run, false).await?;
        // Written before the commit: a load that committed always has its quarantine.
        if let Some(file) = set_aside {
            quarantine(file).await?;
        }
        let metrics = metrics(&tables, &checks);
        audit::record(&mut tx, run, &tables, &metrics, started).await?;
        tx.commit().await?;
        tracing::info!(run = %run.id, dataset = %run.dataset, tables = tables.len(), "Load committed.");
        Ok((tables, checks))
    }

    /// Records the quality figures of a run that loads nothing (one its quality gate
    /// stopped), replacing any the run had.
    pub async fn record_quality(&self, run: &RunDescriptor, metrics: &[Metric]) -> Result<()> {
        let mut tx = self.begin().await?;
        audit::record(&mut tx, run, &BTreeMap::new(), metrics, chrono::Utc::now()).await?;
        tx.commit().await
    }
}
