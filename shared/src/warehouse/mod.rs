//! The warehouse: PostgreSQL (RDS in the cloud, any `postgres://` URL offline) or SQLite (the
//! offline default). Lakestar's own tables come from migrations; the star tables are created
//! from the contract and evolved additively; [`Warehouse::load`] merges one run's curated
//! rows in one transaction, serialised per table.

mod binary;
mod bulk;
pub mod dates;
pub mod ddl;
mod dimension;
mod fact;
mod merge;
pub mod scd;
pub mod text;
mod tx;

use std::collections::BTreeMap;

pub use dates::date_key;
pub use merge::TableCounts;
pub use tx::CopyFormat;
use tx::Tx;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

pub use ddl::Dialect;

use crate::contract::{Contract, Dataset};
use crate::run::RunDescriptor;
use crate::{Error, Result};

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

/// A connection pool to one warehouse.
#[derive(Debug, Clone)]
pub enum Warehouse {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> Error {
    Error::WarehouseUnavailable(format!("{what}: {error}"))
}

impl Warehouse {
    /// Connects to `postgres://…` or `sqlite://path` (the SQLite file is created if missing),
    /// then applies Lakestar's migrations.
    pub async fn connect(url: &str) -> Result<Warehouse> {
        let warehouse = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options: sqlx::postgres::PgConnectOptions = url
                .parse()
                .map_err(|error| Error::Configuration(format!("`{url}` is not a PostgreSQL URL: {error}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .connect_with(tuned(options))
                .await
                .map_err(|error| unavailable("connecting to PostgreSQL", error))?;
            Warehouse::Postgres(pool)
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .busy_timeout(std::time::Duration::from_secs(30));
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(|error| unavailable(&format!("opening SQLite database {path}"), error))?;
            Warehouse::Sqlite(pool)
        } else {
            return Err(Error::Configuration(format!(
                "`{url}` is not a warehouse URL: use postgres://user@host/db or sqlite://path/to/warehouse.db"
            )));
        };
        warehouse.migrate().await?;
        Ok(warehouse)
    }

    /// Connects to PostgreSQL with explicit options (the Lambda builds them from the RDS
    /// secret, TLS required), then applies Lakestar's migrations.
    pub async fn connect_postgres(options: sqlx::postgres::PgConnectOptions) -> Result<Warehouse> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(tuned(options))
            .await
            .map_err(|error| unavailable("connecting to PostgreSQL", error))?;
        let warehouse = Warehouse::Postgres(pool);
        warehouse.migrate().await?;
        Ok(warehouse)
    }

    /// The warehouse's SQL dialect.
    pub fn dialect(&self) -> Dialect {
        match self {
            Warehouse::Postgres(_) => Dialect::Postgres,
            Warehouse::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Applies Lakestar's own migrations (run registry, load audit, quality metrics).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Warehouse::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
            Warehouse::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await,
        }
        .map_err(|error| unavailable("applying migrations", error))
    }

    /// Begins a transaction; SQLite's takes the write lock at once (`BEGIN IMMEDIATE`).
    async fn begin(&self) -> Result<Tx> {
        match self {
            Warehouse::Postgres(pool) => pool.begin().await.map(Tx::Postgres),
            Warehouse::Sqlite(pool) => pool.begin_with("BEGIN IMMEDIATE").await.map(Tx::Sqlite),
        }
        .map_err(|error| Error::database("beginning a transaction", error))
    }

    /// The columns a table has, with the types the database reports; empty when it does not exist.
    pub async fn existing_columns(&self, table: &str) -> Result<Vec<(String, String)>> {
        let mut tx = self.begin().await?;
        let columns = existing_columns(&mut tx, table).await?;
        tx.commit().await?;
        Ok(columns)
    }

    /// Creates every star table of the contract and `dim_date`, and adds columns the contract
    /// gained since (`ALTER TABLE … ADD COLUMN`). A column whose type changed incompatibly is
    /// an error naming table and column: nothing is dropped or rewritten. Concurrent callers
    /// are serialised.
    pub async fn ensure_tables(&self, contract: &Contract) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.lock(&["ddl"]).await?;
        let dialect = tx.dialect();
        tx.execute("creating dim_date", ddl::create_dim_date(dialect), None).await?;
        for dataset in &contract.datasets {
            ensure_table(&mut tx, dataset, contract).await?;
        }
        tx.commit().await
    }

    /// Adds the `dim_date` rows of `dates` that are missing (idempotent). Returns how many
    /// rows were inserted.
    pub async fn ensure_dates(&self, dates: &[chrono::NaiveDate]) -> Result<u64> {
        let mut tx = self.begin().await?;
        let inserted = insert_dates(&mut tx, dates).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Loads one run's curated parts (`files`, the Parquet of `run.dataset`'s star table) in
    /// one transaction holding the locks of every table it writes: the dimension's SCD merge,
    /// or the fact's upsert with its inferred members and `dim_date` rows; then the run
    /// registry, the load audit and the quality metrics `metrics` makes from the counts.
    pub async fn load(
        &self,
        contract: &Contract,
        run: &RunDescriptor,
        files: Vec<std::fs::File>,
        metrics: impl FnOnce(&BTreeMap<String, TableCounts>) -> Vec<Metric>,
    ) -> Result<BTreeMap<String, TableCounts>> {
        let dataset = contract.dataset(&run.dataset).ok_or_else(|| Error::UnknownDataset { key: run.key.clone() })?;
        self.ensure_tables(contract).await?;
        let started = chrono::Utc::now();
        let mut tx = self.begin().await?;
        let mut tables = BTreeMap::new();
        if dataset.table.kind == crate::contract::TableKind::Dimension {
            tx.lock(&[dataset.table.name.as_str()]).await?;
            let run_time = run.time.timestamp_micros();
            let counts = dimension::load_dimension(&mut tx, dataset, contract, &run.id, run_time, files).await?;
            tables.insert(dataset.table.name.clone(), counts);
        } else {
            let mut locked: Vec<&str> =
                dataset.table.references.iter().map(|reference| reference.dimension.as_str()).collect();
            locked.push(dataset.table.name.as_str());
            tx.lock(&locked).await?;
            let (counts, inferred, dates) = fact::load_fact(&mut tx, dataset, contract, &run.id, files).await?;
            tables.insert(dataset.table.name.clone(), counts);
            for (dimension, added) in inferred {
                tables.insert(dimension, TableCounts { inferred: added, ..TableCounts::default() });
            }
            let dates: Vec<chrono::NaiveDate> = dates.into_iter().collect();
            let added = insert_dates(&mut tx, &dates).await?;
            tables.insert(
                "dim_date".to_string(),
                TableCounts { inserted: added, unchanged: dates.len() as u64 - added, ..TableCounts::default() },
            );
        }
        let metrics = metrics(&tables);
        record(&mut tx, run, &tables, &metrics, started).await?;
        tx.commit().await?;
        tracing::info!(run = %run.id, dataset = %run.dataset, tables = tables.len(), "Load committed.");
        Ok(tables)
    }
}

impl Warehouse {
    /// A bare bulk copy of Parquet files into an existing table, matching columns by name:
    /// `COPY` in `format` on PostgreSQL, batched inserts on SQLite, one transaction, no merge.
    /// The load benchmark's baseline, and a quick way to pull a curated table into a scratch
    /// table.
    pub async fn bulk_copy(&self, table: &str, files: Vec<std::fs::File>, format: CopyFormat) -> Result<u64> {
        let mut tx = self.begin().await?;
        let columns: Vec<String> = existing_columns(&mut tx, table).await?.into_iter().map(|(name, _)| name).collect();
        if columns.is_empty() {
            return Err(Error::WarehouseLoad(format!("bulk copy: table `{table}` does not exist")));
        }
        let quoted: Vec<String> = columns.iter().map(|name| ddl::quote(name)).collect::<Result<_>>()?;
        let rows = CopiedRows { batches: Box::new(merge::batches(files, None)), columns };
        let options = tx::CopyOptions { format, freeze: false };
        let (_, copied) = tx.stage_from_as(&ddl::quote(table)?, &quoted, rows, options).await?;
        let copied = copied?;
        tx.commit().await?;
        Ok(copied)
    }
}

/// Curated rows as they are, for [`Warehouse::bulk_copy`].
struct CopiedRows {
    batches: Box<dyn Iterator<Item = Result<arrow::array::RecordBatch>> + Send>,
    columns: Vec<String>,
}

impl tx::Producer for CopiedRows {
    fn next_batch(&mut self) -> Option<Result<tx::StageBatch>> {
        let batch = self.batches.next()?;
        Some(batch.and_then(|batch| {
            let columns = self
                .columns
                .iter()
                .map(|name| match batch.column_by_name(name) {
                    Some(array) => text::TextColumn::new(array).map(tx::Cells::Arrow),
                    None => Ok(tx::Cells::Constant(None)),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(tx::StageBatch { columns, rows: batch.num_rows() })
        }))
    }
}

/// Session settings for loads: staging tables are temporary, and PostgreSQL keeps them in
/// `temp_buffers` (8 MB by default, settable only before a session first uses one).
fn tuned(options: sqlx::postgres::PgConnectOptions) -> sqlx::postgres::PgConnectOptions {
    options.options([("temp_buffers", "256MB")])
}

/// The columns of `table` with their reported types.
async fn existing_columns(tx: &mut Tx, table: &str) -> Result<Vec<(String, String)>> {
    let statement = match tx.dialect() {
        Dialect::Postgres => format!(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{}' ORDER BY ordinal_position",
            checked_name(table)?
        ),
        Dialect::Sqlite => format!("SELECT name, type FROM pragma_table_info('{}')", checked_name(table)?),
    };
    let rows = tx.fetch_text("reading the catalog", statement).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut values = row.into_iter().map(Option::unwrap_or_default);
            (values.next().unwrap_or_default(), values.next().unwrap_or_default())
        })
        .collect())
}

/// A table name checked to be a plain identifier, so it can sit in a catalog query.
fn checked_name(table: &str) -> Result<&str> {
    ddl::quote(table).map(|_| table)
}

/// Creates or evolves one star table.
async fn ensure_table(tx: &mut Tx, dataset: &Dataset, contract: &Contract) -> Result<()> {
    let dialect = tx.dialect();
    let table = &dataset.table.name;
    let existing = existing_columns(tx, table).await?;
    if existing.is_empty() {
        for statement in ddl::create_table(dataset, contract, dialect)? {
            tx.execute(&format!("creating {table}"), statement, None).await?;
        }
        tracing::info!(table = %table, "Created star table.");
        return Ok(());
    }
    // Hash columns of a dimension from before row hashes were bytes, converted together below.
    let mut text_hashes = Vec::new();
    for column in ddl::table_columns(dataset, contract, dialect)? {
        match existing.iter().find(|(name, _)| name == &column.name) {
            Some((_, reported)) if ddl::same_type(reported, &column.sql_type) => {}
            Some((_, reported)) if is_text_hash(dialect, &column.name, reported) => {
                text_hashes.push(ddl::quote(&column.name)?);
            }
            Some((_, reported)) => {
                return Err(Error::WarehouseSchema(format!(
                    "column `{}` of `{table}` is {reported} in the warehouse but the contract now makes it {}; migrate it by hand (Lakestar only adds columns)",
                    column.name, column.sql_type
                )));
            }
            None => {
                let statement = format!(
                    "ALTER TABLE {} ADD COLUMN {} {}",
                    ddl::quote(table)?,
                    ddl::quote(&column.name)?,
                    column.sql_type
                );
                tx.execute(&format!("adding a column to {table}"), statement, None).await?;
                tracing::info!(table = %table, column = %column.name, "Added a column.");
            }
        }
    }
    if !text_hashes.is_empty() {
        // Their hex digits become the bytes they spell, once, in one rewrite of the table (a
        // text that is no hash of Lakestar's becomes NULL, which equals no row's hash, as the
        // text did).
        let conversions: Vec<String> = text_hashes
            .iter()
            .map(|name| {
                format!("ALTER COLUMN {name} TYPE BYTEA USING CASE WHEN {name} ~ '^[0-9a-f]{{32}}$' THEN decode({name}, 'hex') END")
            })
            .collect();
        let statement = format!("ALTER TABLE {} {}", ddl::quote(table)?, conversions.join(", "));
        tx.execute(&format!("storing the row hashes of {table} as bytes"), statement, None).await?;
        tracing::info!(table = %table, columns = text_hashes.len(), "Stored the row hashes as bytes.");
    }
    for statement in ddl::indexes(dataset)? {
        tx.execute(&format!("indexing {table}"), statement, None).await?;
    }
    Ok(())
}

/// Whether `name` is a row hash column a PostgreSQL dimension still holds as hex text.
fn is_text_hash(dialect: Dialect, name: &str, reported: &str) -> bool {
    dialect == Dialect::Postgres && matches!(name, "row_hash" | "type1_hash") && reported.eq_ignore_ascii_case("text")
}

/// Adds the missing `dim_date` rows of `dates`, in batches of bound parameters.
async fn insert_dates(tx: &mut Tx, dates: &[chrono::NaiveDate]) -> Result<u64> {
    let mut rows: Vec<dates::DateRow> = dates.iter().copied().map(dates::DateRow::of).collect();
    rows.sort_by_key(|row| row.date_key);
    rows.dedup_by_key(|row| row.date_key);
    const COLUMNS: &str = "\"date_key\", \"date\", \"year\", \"quarter\", \"month\", \"month_name\", \"day\", \"day_of_week\", \"day_name\", \"iso_week\", \"is_weekend\"";
    let mut inserted = 0;
    for chunk in rows.chunks(500) {
        let placeholders: Vec<String> = (0..chunk.len())
            .map(|row| {
                let values: Vec<String> = (1..=11).map(|column| format!("${}", row * 11 + column)).collect();
                format!("({})", values.join(", "))
            })
            .collect();
        let statement = format!(
            "INSERT INTO \"dim_date\" ({COLUMNS}) VALUES {} ON CONFLICT (\"date_key\") DO NOTHING",
            placeholders.join(", ")
        );
        // The same binds for both backends; SQLite stores the date as ISO text.
        macro_rules! bind_rows {
            ($connection:expr, $date:expr) => {{
                let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
                for row in chunk {
                    query = query
                        .bind(row.date_key)
                        .bind($date(row))
                        .bind(row.year)
                        .bind(row.quarter)
                        .bind(row.month)
                        .bind(row.month_name)
                        .bind(row.day)
                        .bind(row.day_of_week)
                        .bind(row.day_name)
                        .bind(row.iso_week)
                        .bind(row.is_weekend);
                }
                query.execute($connection).await.map(|done| done.rows_affected())
            }};
        }
        inserted += match tx {
            Tx::Postgres(tx) => bind_rows!(&mut **tx, |row: &dates::DateRow| row.date),
            Tx::Sqlite(tx) => bind_rows!(&mut **tx, |row: &dates::DateRow| row.date.format("%Y-%m-%d").to_string()),
        }
        .map_err(|error| Error::database("adding dim_date rows", error))?;
    }
    Ok(inserted)
}

/// Writes the run registry, one `load_audit` row per table and the quality metrics (replacing
/// the run's earlier figures, so a reload leaves one set).
async fn record(
    tx: &mut Tx,
    run: &RunDescriptor,
    tables: &BTreeMap<String, TableCounts>,
    metrics: &[Metric],
    started: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let finished = chrono::Utc::now();
    let context = |what: &'static str| move |error| Error::database(what, error);
    macro_rules! write_all {
        ($connection:expr, $time:expr, $now:expr) => {{
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO lakestar_runs (run_id, dataset, source_key) VALUES ($1, $2, $3) \
                 ON CONFLICT (run_id) DO UPDATE SET loaded_at = {}",
                $now
            )))
            .bind(&run.id)
            .bind(&run.dataset)
            .bind(&run.key)
            .execute(&mut *$connection)
            .await
            .map_err(context("registering the run"))?;
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
            for metric in metrics {
                sqlx::query(
                    "INSERT INTO quality_metrics (run_id, dataset, metric, dimension, value) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (run_id, metric, dimension) DO UPDATE SET value = excluded.value, dataset = excluded.dataset",
                )
                .bind(&run.id)
                .bind(&run.dataset)
                .bind(&metric.name)
                .bind(&metric.dimension)
                .bind(metric.value)
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
            write_all!(connection, scd::timestamp_text, "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')")
        }
    }
    Ok(())
}

/// The RDS secret's JSON (`username` and `password`; `host`, `port`, `dbname` when the secret
/// carries them), completed by `LAKESTAR_DATABASE_HOST`, `_PORT` and `_NAME` as RDS-managed
/// master secrets hold only the credentials. TLS is required.
pub fn postgres_options(
    secret: &str,
    environment: &crate::config::Environment,
) -> Result<sqlx::postgres::PgConnectOptions> {
    #[derive(serde::Deserialize)]
    struct Secret {
        username: String,
        password: String,
        host: Option<String>,
        port: Option<serde_json::Value>,
        dbname: Option<String>,
    }
    let secret: Secret = serde_json::from_str(secret).map_err(|error| {
        Error::Configuration(format!(
            "the database secret is not the JSON RDS keeps (`username`, `password`, optionally `host`, `port`, `dbname`): {error}"
        ))
    })?;
    let host = secret.host.or_else(|| environment.database_host.clone()).ok_or_else(|| {
        Error::Configuration("the database secret has no `host`; set LAKESTAR_DATABASE_HOST".to_string())
    })?;
    let port = match secret.port {
        Some(serde_json::Value::Number(number)) => number.as_u64(),
        Some(serde_json::Value::String(text)) => text.parse().ok(),
        _ => environment.database_port.as_deref().and_then(|text| text.parse().ok()),
    }
    .unwrap_or(5432);
    let port =
        u16::try_from(port).map_err(|_| Error::Configuration(format!("database port {port} is out of range")))?;
    let database =
        secret.dbname.or_else(|| environment.database_name.clone()).unwrap_or_else(|| "postgres".to_string());
    Ok(sqlx::postgres::PgConnectOptions::new()
        .host(&host)
        .port(port)
        .username(&secret.username)
        .password(&secret.password)
        .database(&database)
        .ssl_mode(sqlx::postgres::PgSslMode::Require)
        .application_name("lakestar-load"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rds_secret_becomes_tls_connection_options() {
        let options = postgres_options(
            r#"{"username":"lakestar","password":"p@ss/word","host":"db.example","port":5433,"dbname":"dw"}"#,
            &crate::config::Environment::default(),
        )
        .expect("options");
        assert_eq!((options.get_host(), options.get_port(), options.get_database()), ("db.example", 5433, Some("dw")));
        assert_eq!(options.get_username(), "lakestar");
        assert!(matches!(options.get_ssl_mode(), sqlx::postgres::PgSslMode::Require));

        // A managed master secret holds only the credentials; the rest comes from the environment.
        let env = |name: &str| match name {
            "LAKESTAR_DATABASE_HOST" => Some("rds.internal".to_string()),
            "LAKESTAR_DATABASE_PORT" => Some("5432".to_string()),
            "LAKESTAR_DATABASE_NAME" => Some("lakestar".to_string()),
            _ => None,
        };
        let options =
            postgres_options(r#"{"username":"u","password":"p"}"#, &crate::config::Environment::from_lookup(env))
                .expect("options");
        assert_eq!((options.get_host(), options.get_database()), ("rds.internal", Some("lakestar")));

        let error = postgres_options(r#"{"username":"u","password":"p"}"#, &crate::config::Environment::default())
            .expect_err("no host");
        assert!(error.to_string().contains("LAKESTAR_DATABASE_HOST"), "{error}");
        let error = postgres_options("not json", &crate::config::Environment::default()).expect_err("not JSON");
        assert_eq!(error.error_type(), "InvalidConfiguration");
        assert!(!error.to_string().contains("not json"));
    }
}
