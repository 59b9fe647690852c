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
        // A dim_date from before fiscal years: the columns, then every row's values (again
        // whenever the contract's fiscal start changed).
        let calendar_columns = existing_columns(&mut tx, "dim_date").await?;
        for column in ["fiscal_year", "fiscal_quarter"] {
            if !calendar_columns.iter().any(|(name, _)| name == column) {
                let statement = format!("ALTER TABLE \"dim_date\" ADD COLUMN \"{column}\" INTEGER");
                tx.execute("adding dim_date's fiscal columns", statement, None).await?;
            }
        }
        super::dates::set_fiscal_years(&mut tx, &contract.calendar, false).await?;
        // Dimensions first: a fact's foreign keys name them.
        let mut ordered = datasets.to_vec();
        ordered.sort_by_key(|dataset| dataset.table.kind != crate::contract::TableKind::Dimension);
        // The views show what the tables hold: with the columns earlier runs evolved in too,
        // when this run's file lacks them.
        let mut viewed = contract.clone();
        for dataset in ordered {
            ensure_table(&mut tx, dataset, contract).await?;
            let kept = evolved_columns(&mut tx, dataset, contract).await?;
            viewed = viewed.evolved(&dataset.name, &kept);
            let shown = viewed.dataset(&dataset.name).unwrap_or(dataset);
            refresh_view(&mut tx, shown, &viewed).await?;
        }
        super::marts::ensure_marts(&mut tx, contract).await?;
        tx.commit().await
    }

    /// The first and last date of `dim_date`, when it has rows.
    pub async fn calendar_range(&self) -> Result<Option<(chrono::NaiveDate, chrono::NaiveDate)>> {
        let mut tx = self.begin().await?;
        let rows = tx
            .fetch_text(
                "reading the calendar's range",
                "SELECT CAST(MIN(\"date\") AS TEXT), CAST(MAX(\"date\") AS TEXT) FROM \"dim_date\"".to_string(),
            )
            .await?;
        tx.commit().await?;
        let date = |text: &Option<String>| {
            text.as_deref().and_then(|text| chrono::NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok())
        };
        Ok(rows.first().and_then(|row| Some((date(row.first()?)?, date(row.get(1)?)?))))
    }

    /// Adds the `dim_date` rows of `dates` that are missing, and those between them that fill
    /// the calendar's gaps (idempotent). Returns how many rows were inserted.
    pub async fn ensure_dates(
        &self,
        dates: &[chrono::NaiveDate],
        calendar: &crate::contract::CalendarConfig,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        let (inserted, filled) = super::dates::insert_dates(&mut tx, dates, calendar).await?;
        tx.commit().await?;
        Ok(inserted + filled)
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
        return ensure_foreign_keys(tx, dataset, contract).await;
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
    if dataset.table.kind == crate::contract::TableKind::Dimension {
        rename_legacy_current_index(tx, dataset).await?;
    }
    for statement in ddl::indexes(dataset, contract)? {
        tx.execute(&format!("indexing {table}"), statement, None).await?;
    }
    ensure_foreign_keys(tx, dataset, contract).await
}

/// Adds the foreign keys of a fact ([`ddl::foreign_keys`], PostgreSQL) it does not have: on
/// a table with rows as `NOT VALID` and then validated, so that rows an earlier Lakestar
/// loaded which break one (a member deleted by hand, say) leave it unvalidated, with a
/// warning naming it, rather than stopping the load.
async fn ensure_foreign_keys(tx: &mut Tx, dataset: &Dataset, contract: &Contract) -> Result<()> {
    if tx.dialect() != Dialect::Postgres {
        return Ok(());
    }
    let table = ddl::quote(&dataset.table.name)?;
    let existing = tx
        .fetch_text(
            "reading the table's foreign keys",
            format!(
                "SELECT CAST(conname AS TEXT) FROM pg_constraint WHERE conrelid = CAST('{}' AS regclass) AND contype = 'f'",
                table.replace('\'', "''")
            ),
        )
        .await?;
    let what = format!("adding the foreign keys of {}", dataset.table.name);
    let missing: Vec<(String, String)> = ddl::foreign_keys(dataset, contract)?
        .into_iter()
        .filter(|(name, _)| !existing.iter().any(|row| row.first().and_then(Option::as_deref) == Some(name.as_str())))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let rows = tx.count_up_to(&table, 1).await?;
    for (name, definition) in missing {
        let name = ddl::quote(&name)?;
        let not_valid = if rows > 0 { " NOT VALID" } else { "" };
        tx.execute(&what, format!("ALTER TABLE {table} ADD CONSTRAINT {name} {definition}{not_valid}"), None).await?;
        if rows > 0 {
            tx.execute(&what, "SAVEPOINT lakestar_foreign_key".to_string(), None).await?;
            let validated = tx.execute(&what, format!("ALTER TABLE {table} VALIDATE CONSTRAINT {name}"), None).await;
            if validated.is_ok() {
                tx.execute(&what, "RELEASE SAVEPOINT lakestar_foreign_key".to_string(), None).await?;
            } else {
                tx.execute(&what, "ROLLBACK TO SAVEPOINT lakestar_foreign_key".to_string(), None).await?;
                tracing::warn!(table = %dataset.table.name, constraint = %name, "Rows of the table break this foreign key; it stays NOT VALID (ALTER TABLE … VALIDATE CONSTRAINT checks it again).");
            }
        }
        tracing::info!(table = %dataset.table.name, constraint = %name, "Added a foreign key.");
    }
    Ok(())
}

/// A dimension made before its current versions had a view kept their unique index under the
/// view's name (`<dim>_current`): it is renamed (PostgreSQL) or made again (SQLite) as
/// `<dim>_cur`, once.
async fn rename_legacy_current_index(tx: &mut Tx, dataset: &Dataset) -> Result<()> {
    let table = &dataset.table.name;
    let legacy = ddl::legacy_current_index_name(table);
    let lookup = match tx.dialect() {
        Dialect::Postgres => format!(
            "SELECT relname::text FROM pg_class WHERE relname = '{}' AND relkind = 'i' AND relnamespace = current_schema()::regnamespace",
            checked_name(&legacy)?
        ),
        Dialect::Sqlite => {
            format!("SELECT name FROM sqlite_master WHERE type = 'index' AND name = '{}'", checked_name(&legacy)?)
        }
    };
    if tx.fetch_text("reading the catalog", lookup).await?.is_empty() {
        return Ok(());
    }
    let what = format!("renaming the current-version index of {table}");
    match tx.dialect() {
        Dialect::Postgres => {
            let statement = format!(
                "ALTER INDEX {} RENAME TO {}",
                ddl::quote(&legacy)?,
                ddl::quote(&ddl::current_index_name(table))?
            );
            tx.execute(&what, statement, None).await?;
        }
        Dialect::Sqlite => {
            tx.execute(&what, format!("DROP INDEX {}", ddl::quote(&legacy)?), None).await?;
            tx.execute(&what, ddl::current_index(dataset, Dialect::Sqlite)?, None).await?;
        }
    }
    tracing::info!(table = %table, "Renamed the current-version index.");
    Ok(())
}

/// The columns a dataset's table holds beyond those the contract gives it: the ones earlier
/// runs evolved in (`schema_contract` `evolve`). None for a dataset that does not evolve.
async fn evolved_columns(tx: &mut Tx, dataset: &Dataset, contract: &Contract) -> Result<Vec<String>> {
    let schema = dataset.config.schema_contract;
    if schema.columns != crate::contract::DriftMode::Evolve && schema.data_type != crate::contract::DriftMode::Evolve {
        return Ok(Vec::new());
    }
    let declared: Vec<String> =
        ddl::table_columns(dataset, contract, tx.dialect())?.into_iter().map(|column| column.name).collect();
    Ok(existing_columns(tx, &dataset.table.name)
        .await?
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| !declared.contains(name))
        .collect())
}

/// Creates or updates the table's view ([`ddl::view`]) to its columns now. On PostgreSQL a
/// view another object depends on can only be replaced when its columns are kept: when the
/// replacement fails and so does dropping it, the view stays as it was (with a warning) and
/// the load goes on; a view is never a reason for a load to fail.
async fn refresh_view(tx: &mut Tx, dataset: &Dataset, contract: &Contract) -> Result<()> {
    let (name, query) = ddl::view(dataset, contract, tx.dialect())?;
    let view = ddl::quote(&name)?;
    let what = format!("creating the view {name}");
    match tx.dialect() {
        Dialect::Sqlite => {
            tx.execute(&what, format!("DROP VIEW IF EXISTS {view}"), None).await?;
            tx.execute(&what, format!("CREATE VIEW {view} AS {query}"), None).await?;
        }
        Dialect::Postgres => {
            tx.execute(&what, "SAVEPOINT lakestar_view".to_string(), None).await?;
            if tx.execute(&what, format!("CREATE OR REPLACE VIEW {view} AS {query}"), None).await.is_err() {
                tx.execute(&what, "ROLLBACK TO SAVEPOINT lakestar_view".to_string(), None).await?;
                let replaced = match tx.execute(&what, format!("DROP VIEW IF EXISTS {view}"), None).await {
                    Ok(_) => tx.execute(&what, format!("CREATE VIEW {view} AS {query}"), None).await.map(|_| ()),
                    Err(error) => Err(error),
                };
                if let Err(error) = replaced {
                    tx.execute(&what, "ROLLBACK TO SAVEPOINT lakestar_view".to_string(), None).await?;
                    tracing::warn!(view = %name, error = %error, "Could not update the view to the table's columns; it keeps its definition.");
                }
            }
            tx.execute(&what, "RELEASE SAVEPOINT lakestar_view".to_string(), None).await?;
        }
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
