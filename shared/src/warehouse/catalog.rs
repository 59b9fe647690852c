//! The warehouse's catalog: the star tables created from the contract and evolved
//! additively, the columns a table has, and `dim_date`'s rows.

use super::tx::Tx;
use super::{Dialect, Warehouse, ddl};
use crate::contract::{Contract, Dataset};
use crate::{Error, Result};

impl Warehouse {
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
        self.ensure_tables_of(contract, &contract.datasets.iter().collect::<Vec<_>>()).await
    }

    /// [`Warehouse::ensure_tables`] for `datasets` only (a load touches its own tables and
    /// those it references, never another dataset's).
    pub async fn ensure_tables_of(&self, contract: &Contract, datasets: &[&Dataset]) -> Result<()> {
        let mut tx = self.begin().await?;
        tx.lock(&["ddl"]).await?;
        let dialect = tx.dialect();
        tx.execute("creating dim_date", ddl::create_dim_date(dialect), None).await?;
        for dataset in datasets {
            ensure_table(&mut tx, dataset, contract).await?;
        }
        tx.commit().await
    }

    /// Adds the `dim_date` rows of `dates` that are missing (idempotent). Returns how many
    /// rows were inserted.
    pub async fn ensure_dates(&self, dates: &[chrono::NaiveDate]) -> Result<u64> {
        let mut tx = self.begin().await?;
        let inserted = super::dates::insert_dates(&mut tx, dates).await?;
        tx.commit().await?;
        Ok(inserted)
    }
}

/// The columns of `table` with their reported types.
pub(super) async fn existing_columns(tx: &mut Tx, table: &str) -> Result<Vec<(String, String)>> {
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
            Some((_, reported)) if is_text_decimal(dialect, reported, &column.sql_type) => {
                // A SQLite table made before decimals were numeric: its values stay text (they
                // sort as text) until the table is made again; SQLite cannot change a type.
                tracing::warn!(table = %table, column = %column.name, "A decimal column of this SQLite table is text; recreate the table for numeric order and sums.");
            }
            Some((_, reported)) if is_text_hash(dialect, &column.name, reported) => {
                text_hashes.push(ddl::quote(&column.name)?);
            }
            Some((_, reported)) => {
                return Err(Error::WarehouseSchema {
                    table: table.clone(),
                    column: Some(column.name.clone()),
                    message: format!(
                        "is {reported} in the warehouse but the contract now makes it {}; migrate it by hand (Lakestar only adds columns)",
                        column.sql_type
                    ),
                });
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

/// Whether a decimal column of a SQLite table is the text it was before decimals were numeric.
fn is_text_decimal(dialect: Dialect, reported: &str, expected: &str) -> bool {
    dialect == Dialect::Sqlite && reported.eq_ignore_ascii_case("text") && expected.starts_with("NUMERIC")
}

/// Whether `name` is a row hash column a PostgreSQL dimension still holds as hex text.
fn is_text_hash(dialect: Dialect, name: &str, reported: &str) -> bool {
    dialect == Dialect::Postgres && matches!(name, "row_hash" | "type1_hash") && reported.eq_ignore_ascii_case("text")
}
