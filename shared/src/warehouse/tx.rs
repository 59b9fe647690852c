//! One warehouse transaction, whichever the backend: statements, text and typed reads, and
//! per-table locks. Bulk staging into it is [`super::staging`].

use sqlx::{Postgres, Row, Sqlite, Transaction};

use super::Dialect;
use super::binary::BinaryRows;
use super::cells::{Kind, Value};
use super::codec;
use crate::{Error, Result};

/// An open transaction.
pub(crate) enum Tx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

impl Tx {
    pub fn dialect(&self) -> Dialect {
        match self {
            Tx::Postgres(_) => Dialect::Postgres,
            Tx::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Serialises this transaction against every other load of the same tables (PostgreSQL
    /// advisory transaction locks, taken in name order so two loads cannot deadlock). SQLite
    /// transactions begin `IMMEDIATE`, which already holds the database's write lock.
    pub async fn lock(&mut self, tables: &[&str]) -> Result<()> {
        let mut names: Vec<String> = tables.iter().map(|table| format!("lakestar:{table}")).collect();
        names.sort();
        names.dedup();
        if let Tx::Postgres(tx) = self {
            // Room for the merge's hash joins and sorts, and no JIT: the merge's correlated
            // fallbacks inflate the estimated cost, and compiling the plan took longer than
            // running it (half of a 100 000-row fact load). For this transaction only.
            for setting in ["SET LOCAL work_mem = '128MB'", "SET LOCAL jit = off"] {
                sqlx::query(setting)
                    .execute(&mut **tx)
                    .await
                    .map_err(|error| Error::database("tuning the load's session", error))?;
            }
            for name in names {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(&name)
                    .execute(&mut **tx)
                    .await
                    .map_err(|error| Error::database(format!("waiting for the lock on {name}"), error))?;
            }
        }
        Ok(())
    }

    /// Runs a statement built from quoted contract identifiers and constants; `run_id` is
    /// bound wherever the statement says `$1`. Returns the rows affected.
    pub async fn execute(&mut self, what: &str, statement: String, run_id: Option<&str>) -> Result<u64> {
        let context = |error| Error::database(what, error);
        match self {
            Tx::Postgres(tx) => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
                if let Some(run_id) = run_id {
                    query = query.bind(run_id);
                }
                query.execute(&mut **tx).await.map(|done| done.rows_affected()).map_err(context)
            }
            Tx::Sqlite(tx) => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
                if let Some(run_id) = run_id {
                    query = query.bind(run_id);
                }
                query.execute(&mut **tx).await.map(|done| done.rows_affected()).map_err(context)
            }
        }
    }

    /// Reads rows whose every column the statement casts to text.
    pub async fn fetch_text(&mut self, what: &str, statement: String) -> Result<Vec<Vec<Option<String>>>> {
        let context = |error| Error::database(what, error);
        macro_rules! texts {
            ($rows:expr) => {{
                let mut out = Vec::with_capacity($rows.len());
                for row in $rows {
                    let mut values = Vec::with_capacity(row.len());
                    for index in 0..row.len() {
                        values.push(row.try_get::<Option<String>, _>(index).map_err(context)?);
                    }
                    out.push(values);
                }
                out
            }};
        }
        Ok(match self {
            Tx::Postgres(tx) => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(statement)).fetch_all(&mut **tx).await.map_err(context)?;
                texts!(rows)
            }
            Tx::Sqlite(tx) => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(statement)).fetch_all(&mut **tx).await.map_err(context)?;
                texts!(rows)
            }
        })
    }

    /// Reads rows whose columns are decoded as `kinds` say: instants and integers in their
    /// own types, without the server formatting them as text. `Text` columns must be text
    /// (the statement casts others). Each row goes to `each` as soon as its bytes arrive, so
    /// the caller builds its own structure while the server still sends, and the rows are
    /// never all held twice.
    pub async fn fetch_each(
        &mut self,
        what: &str,
        statement: String,
        kinds: &[Kind],
        mut each: impl FnMut(Vec<Value>) + Send,
    ) -> Result<()> {
        let context = |error| Error::database(what, error);
        match self {
            Tx::Postgres(tx) => {
                // Binary COPY: no text formatting on the server, no row objects here.
                let copy = format!("COPY ({statement}) TO STDOUT (FORMAT binary)");
                let mut stream = tx.copy_out_raw(&copy).await.map_err(context)?;
                let mut rows = BinaryRows::new(what, kinds);
                while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                    rows.push(&chunk.map_err(context)?)?;
                    rows.drain().for_each(&mut each);
                }
                rows.finish()?.into_iter().for_each(each);
                Ok(())
            }
            Tx::Sqlite(tx) => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(statement)).fetch_all(&mut **tx).await.map_err(context)?;
                for row in rows {
                    let mut values = Vec::with_capacity(kinds.len());
                    for (index, kind) in kinds.iter().enumerate() {
                        values.push(match kind {
                            Kind::Text => Value::Text(row.try_get(index).map_err(context)?),
                            Kind::Integer => Value::Integer(row.try_get(index).map_err(context)?),
                            Kind::Instant => {
                                let text: Option<String> = row.try_get(index).map_err(context)?;
                                Value::Instant(text.as_deref().and_then(codec::timestamp_micros))
                            }
                            Kind::Hash => {
                                let text: Option<String> = row.try_get(index).map_err(context)?;
                                Value::Hash(text.as_deref().and_then(codec::hash_value))
                            }
                        });
                    }
                    each(values);
                }
                Ok(())
            }
        }
    }

    /// How many rows `table` (quoted) holds, counting no further than `limit`.
    pub async fn count_up_to(&mut self, table: &str, limit: u64) -> Result<u64> {
        let holding = self
            .fetch_count(
                "counting the table's rows",
                format!("SELECT CAST(COUNT(*) AS TEXT) FROM (SELECT 1 FROM {table} LIMIT {limit}) AS some_rows"),
            )
            .await?;
        Ok(holding.max(0) as u64)
    }

    /// Reads one integer (cast to text by the statement).
    pub async fn fetch_count(&mut self, what: &str, statement: String) -> Result<i64> {
        let rows = self.fetch_text(what, statement).await?;
        rows.first()
            .and_then(|row| row.first().cloned().flatten())
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| Error::load_step(what, "the warehouse returned no number"))
    }

    /// Gives the planner the staged table's statistics (temporary tables get none on their
    /// own), so the merge joins hash instead of looping.
    pub async fn analyze(&mut self, table: &str) -> Result<()> {
        self.execute("analysing a staging table", format!("ANALYZE {table}"), None).await.map(|_| ())
    }

    /// Creates a temporary table for this transaction only.
    pub async fn create_temp(&mut self, table: &str, definitions: &[String]) -> Result<()> {
        let statement = match self.dialect() {
            Dialect::Postgres => format!("CREATE TEMP TABLE {table} ({}) ON COMMIT DROP", definitions.join(", ")),
            Dialect::Sqlite => {
                self.execute("dropping a leftover staging table", format!("DROP TABLE IF EXISTS temp.{table}"), None)
                    .await?;
                format!("CREATE TEMP TABLE {table} ({})", definitions.join(", "))
            }
        };
        self.execute("creating a staging table", statement, None).await.map(|_| ())
    }

    /// Drops temporary tables once a step is done with them (PostgreSQL would only at commit).
    pub async fn drop_temp(&mut self, tables: &[&str]) -> Result<()> {
        for table in tables {
            let statement = match self.dialect() {
                Dialect::Postgres => format!("DROP TABLE IF EXISTS pg_temp.{table}"),
                Dialect::Sqlite => format!("DROP TABLE IF EXISTS temp.{table}"),
            };
            self.execute("dropping a staging table", statement, None).await?;
        }
        Ok(())
    }

    /// Commits.
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Postgres(tx) => tx.commit().await,
            Tx::Sqlite(tx) => tx.commit().await,
        }
        .map_err(|error| Error::database("committing the load", error))
    }
}
