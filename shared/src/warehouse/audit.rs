//! What a load reports and records: the counts per table, the run's quality figures, and the
//! rows of `lakestar_runs`, `load_audit` and `quality_metrics` written in the load's
//! transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::codec;
use super::tx::Tx;
use crate::run::RunDescriptor;
use crate::{Error, Result};

/// What a load did to one table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCounts {
    /// Rows with a natural key the table did not have.
    pub inserted: u64,
    /// Rows that changed the table: a new or slotted version, a type 1 overwrite, a completed
    /// inferred member, a changed fact.
    pub updated: u64,
    /// Rows already in the table as they are.
    pub unchanged: u64,
    /// Inferred members created in this table by a fact (dimensions only).
    #[serde(default)]
    pub inferred: u64,
    /// New versions of natural keys the table had (dimensions only: a tracked change, or a
    /// back-dated one slotted into history).
    #[serde(default)]
    pub new_versions: u64,
    /// Versions whose validity ended or moved (dimensions only).
    #[serde(default)]
    pub closed_versions: u64,
    /// Current versions whose type 1 columns were overwritten (dimensions only).
    #[serde(default)]
    pub type1_updates: u64,
    /// Inferred members a fact created, completed in place by their real row (dimensions only).
    #[serde(default)]
    pub completed: u64,
    /// Facts that now reference another version of a dimension, because that dimension's
    /// history changed under them (facts only).
    #[serde(default)]
    pub rekeyed: u64,
    /// Facts set aside into quarantine (`on_missing = "quarantine"`): on the fact table, all
    /// of them; on a dimension, those naming a member it lacks.
    #[serde(default)]
    pub quarantined: u64,
}

/// One quality figure of a run: its name, what it is about (a rule, a column, a table; empty
/// for the run), and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric's name, e.g. `rows_received`.
    pub name: String,
    /// A rule, column or table name; empty for the run as a whole.
    pub dimension: String,
    /// The value.
    pub value: f64,
}

/// What the run did per table when it was loaded, if it was: read in the load's transaction,
/// after its locks, so that a re-drive of a load that committed reports it again instead of
/// loading the run twice.
pub(super) async fn loaded(tx: &mut Tx, run: &RunDescriptor) -> Result<Option<BTreeMap<String, TableCounts>>> {
    let statement = format!("SELECT table_counts FROM lakestar_runs WHERE run_id = '{}'", run.id.replace('\'', "''"));
    let rows = tx.fetch_text("reading whether the run was loaded", statement).await?;
    let Some(text) = rows.into_iter().next().and_then(|row| row.into_iter().next().flatten()) else {
        return Ok(None);
    };
    Ok(serde_json::from_str(&text).ok())
}

/// Writes the run registry (a loaded run only: `tables` is empty for a run the quality gate
/// stopped), one `load_audit` row per table, and the quality metrics, each with the time it
/// was recorded (replacing the run's earlier figures, so a reload or a re-drive after a gate
/// failure leaves one set).
pub(super) async fn record(
    tx: &mut Tx,
    run: &RunDescriptor,
    tables: &BTreeMap<String, TableCounts>,
    metrics: &[Metric],
    started: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let registered = !tables.is_empty();
    let counts_json =
        serde_json::to_string(tables).map_err(|error| Error::Internal(format!("table counts: {error}")))?;
    let finished = chrono::Utc::now();
    let context = |what: &'static str| move |error| Error::database(what, error);
    macro_rules! write_all {
        ($connection:expr, $time:expr, $now:expr) => {{
            if registered {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO lakestar_runs (run_id, dataset, source_key, table_counts) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (run_id) DO UPDATE SET loaded_at = {}, table_counts = excluded.table_counts",
                    $now
                )))
                .bind(&run.id)
                .bind(&run.dataset)
                .bind(&run.key)
                .bind(&counts_json)
                .execute(&mut *$connection)
                .await
                .map_err(context("registering the run"))?;
            }
            for (table, counts) in tables {
                sqlx::query(
                    "INSERT INTO load_audit (run_id, dataset, table_name, inserted, updated, unchanged, inferred, started_at, finished_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&run.id)
                .bind(&run.dataset)
                .bind(table)
                .bind(counts.inserted as i64)
                .bind(counts.updated as i64)
                .bind(counts.unchanged as i64)
                .bind(counts.inferred as i64)
                .bind($time(started))
                .bind($time(finished))
                .execute(&mut *$connection)
                .await
                .map_err(context("writing the load audit"))?;
            }
            sqlx::query("DELETE FROM quality_metrics WHERE run_id = $1")
                .bind(&run.id)
                .execute(&mut *$connection)
                .await
                .map_err(context("replacing the run's quality metrics"))?;
            for metric in metrics {
                sqlx::query(
                    "INSERT INTO quality_metrics (run_id, dataset, metric, dimension, value, recorded_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&run.id)
                .bind(&run.dataset)
                .bind(&metric.name)
                .bind(&metric.dimension)
                .bind(metric.value)
                .bind($time(finished))
                .execute(&mut *$connection)
                .await
                .map_err(context("writing quality metrics"))?;
            }
        }};
    }
    match tx {
        Tx::Postgres(tx) => {
            let connection: &mut sqlx::PgConnection = tx;
            write_all!(connection, |time: chrono::DateTime<chrono::Utc>| time, "now()")
        }
        Tx::Sqlite(tx) => {
            let connection: &mut sqlx::SqliteConnection = tx;
            write_all!(connection, codec::timestamp_text, "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')")
        }
    }
    Ok(())
}
