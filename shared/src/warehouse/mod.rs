//! The warehouse: PostgreSQL (RDS in the cloud, any `postgres://` URL offline) or SQLite (the
//! offline default). Lakestar's own tables come from migrations; the star tables are created
//! from the contract and evolved additively. The load itself (SCD2 merge, facts, `dim_date`
//! rows) is the load stage's work and is not built yet.

pub mod dates;
pub mod ddl;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

pub use ddl::Dialect;

use crate::contract::Contract;
use crate::{Error, Result};

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
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .connect(url)
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

    async fn execute(&self, statement: &str) -> Result<()> {
        match self {
            // DDL built from validated, quoted contract identifiers; no data value is spliced in.
            Warehouse::Postgres(pool) => {
                sqlx::query(sqlx::AssertSqlSafe(statement.to_string())).execute(pool).await.map(|_| ())
            }
            Warehouse::Sqlite(pool) => {
                sqlx::query(sqlx::AssertSqlSafe(statement.to_string())).execute(pool).await.map(|_| ())
            }
        }
        .map_err(|error| unavailable("running DDL", error))
    }

    /// The columns a table has, with the types the database reports; empty when it does not exist.
    pub async fn existing_columns(&self, table: &str) -> Result<Vec<(String, String)>> {
        const POSTGRES: &str = "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position";
        const SQLITE: &str = "SELECT name, type FROM pragma_table_info(?1)";
        match self {
            Warehouse::Postgres(pool) => sqlx::query_as(POSTGRES).bind(table).fetch_all(pool).await,
            Warehouse::Sqlite(pool) => sqlx::query_as(SQLITE).bind(table).fetch_all(pool).await,
        }
        .map_err(|error| unavailable("reading the catalog", error))
    }

    /// Creates every star table of the contract and `dim_date`, and adds columns the contract
    /// gained since (`ALTER TABLE … ADD COLUMN`). A column whose type changed incompatibly is
    /// an error naming table and column: nothing is dropped or rewritten.
    pub async fn ensure_tables(&self, contract: &Contract) -> Result<()> {
        let dialect = self.dialect();
        self.execute(&ddl::create_dim_date(dialect)).await?;
        for dataset in &contract.datasets {
            let table = &dataset.table.name;
            let existing = self.existing_columns(table).await?;
            if existing.is_empty() {
                for statement in ddl::create_table(dataset, contract, dialect)? {
                    self.execute(&statement).await?;
                }
                tracing::info!(table = %table, "Created star table.");
                continue;
            }
            for column in ddl::table_columns(dataset, contract, dialect)? {
                match existing.iter().find(|(name, _)| name == &column.name) {
                    Some((_, reported)) if ddl::same_type(reported, &column.sql_type) => {}
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
                        self.execute(&statement).await?;
                        tracing::info!(table = %table, column = %column.name, "Added a column.");
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds the `dim_date` rows of `dates` that are missing (idempotent), in batches of bound
    /// parameters. Returns how many rows were inserted.
    pub async fn ensure_dates(&self, dates: &[chrono::NaiveDate]) -> Result<u64> {
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
                ($pool:expr, $date:expr) => {{
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
                    query.execute($pool).await.map(|done| done.rows_affected())
                }};
            }
            inserted += match self {
                Warehouse::Postgres(pool) => bind_rows!(pool, |row: &dates::DateRow| row.date),
                Warehouse::Sqlite(pool) => {
                    bind_rows!(pool, |row: &dates::DateRow| row.date.format("%Y-%m-%d").to_string())
                }
            }
            .map_err(|error| unavailable("adding dim_date rows", error))?;
        }
        Ok(inserted)
    }
}
