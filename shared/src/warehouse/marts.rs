//! The marts declared in the contract: made (or made again when their definition changed)
//! with the star tables, and brought up to date inside every load that changes what they
//! show. PostgreSQL keeps them as materialized views with a unique index over the group-by
//! columns, refreshed concurrently (readers keep the previous contents until the load
//! commits); SQLite as tables whose rows the load replaces.

use sha2::{Digest, Sha256};

use super::ddl::{self, Dialect, quote};
use super::tx::Tx;
use crate::contract::{Contract, Mart};
use crate::{Error, Result};

impl super::Warehouse {
    /// Brings the marts that show `table` up to date, in a transaction of their own (what a
    /// load of `table` does before it commits; the load benchmark times it apart).
    pub async fn refresh_marts(&self, contract: &Contract, table: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        refresh_marts(&mut tx, contract, table).await?;
        tx.commit().await
    }
}

/// Makes every mart whose tables exist and that is missing or was made from another
/// definition. An object of a mart's name that Lakestar did not make is an error naming it.
pub(super) async fn ensure_marts(tx: &mut Tx, contract: &Contract) -> Result<()> {
    for mart in &contract.marts {
        if !tables_exist(tx, mart).await? {
            tracing::debug!(mart = %mart.name, "The mart's tables do not exist yet; it is made with them.");
            continue;
        }
        let query = ddl::mart_query(mart, contract)?;
        let fingerprint = fingerprint(&query);
        let registered = registered(tx, &mart.name).await?;
        let exists = relation_exists(tx, &mart.name).await?;
        if exists && registered.is_none() {
            return Err(Error::WarehouseSchema {
                table: mart.name.clone(),
                column: None,
                message: "exists in the warehouse but is not a mart Lakestar made; rename or drop it, or name the mart otherwise".to_string(),
            });
        }
        if exists && registered.as_deref() == Some(fingerprint.as_str()) {
            continue;
        }
        make(tx, mart, &query, &fingerprint, exists).await?;
        tracing::info!(mart = %mart.name, "Made the mart.");
    }
    Ok(())
}

/// Brings every mart that shows `table` (its fact, or a dimension it groups by) up to date,
/// in the load's transaction.
pub(super) async fn refresh_marts(tx: &mut Tx, contract: &Contract, table: &str) -> Result<()> {
    for mart in contract.marts.iter().filter(|mart| mart.depends_on(table)) {
        if registered(tx, &mart.name).await?.is_none() {
            continue;
        }
        let name = quote(&mart.name)?;
        let what = format!("refreshing the mart {}", mart.name);
        match tx.dialect() {
            Dialect::Postgres => {
                tx.execute(&what, format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {name}"), None).await?;
            }
            Dialect::Sqlite => {
                tx.execute(&what, format!("DELETE FROM {name}"), None).await?;
                let query = ddl::mart_query(mart, contract)?;
                tx.execute(&what, format!("INSERT INTO {name} {query}"), None).await?;
            }
        }
        tracing::info!(mart = %mart.name, "Refreshed the mart.");
    }
    Ok(())
}

/// Drops the mart's old object (when `exists`), makes it from `query` with its unique index,
/// and registers it.
async fn make(tx: &mut Tx, mart: &Mart, query: &str, fingerprint: &str, exists: bool) -> Result<()> {
    let name = quote(&mart.name)?;
    let what = format!("making the mart {}", mart.name);
    let (drop, create) = match tx.dialect() {
        Dialect::Postgres => ("DROP MATERIALIZED VIEW IF EXISTS", "CREATE MATERIALIZED VIEW"),
        Dialect::Sqlite => ("DROP TABLE IF EXISTS", "CREATE TABLE"),
    };
    if exists {
        tx.execute(&what, format!("{drop} {name}"), None).await?;
    }
    tx.execute(&what, format!("{create} {name} AS {query}"), None).await?;
    let columns: Vec<String> = mart.group_by.iter().map(|group| quote(&group.name)).collect::<Result<_>>()?;
    let index =
        format!("CREATE UNIQUE INDEX {} ON {name} ({})", quote(&ddl::mart_index_name(&mart.name))?, columns.join(", "));
    tx.execute(&what, index, None).await?;
    tx.execute(&what, format!("DELETE FROM lakestar_marts WHERE name = '{}'", mart.name), None).await?;
    let register = format!(
        "INSERT INTO lakestar_marts (name, fact, fingerprint) VALUES ('{}', '{}', '{fingerprint}')",
        mart.name, mart.fact
    );
    tx.execute(&what, register, None).await?;
    Ok(())
}

/// The fingerprint of a mart's query: what tells a changed definition.
fn fingerprint(query: &str) -> String {
    Sha256::digest(query.as_bytes()).iter().take(12).map(|byte| format!("{byte:02x}")).collect()
}

/// The fingerprint Lakestar made the mart with, if it made it.
async fn registered(tx: &mut Tx, mart: &str) -> Result<Option<String>> {
    quote(mart)?;
    let rows = tx
        .fetch_text("reading the marts", format!("SELECT fingerprint FROM lakestar_marts WHERE name = '{mart}'"))
        .await?;
    Ok(rows.into_iter().next().and_then(|row| row.into_iter().next().flatten()))
}

/// Whether a table, view or materialized view of that name exists.
async fn relation_exists(tx: &mut Tx, name: &str) -> Result<bool> {
    quote(name)?;
    let statement = match tx.dialect() {
        Dialect::Postgres => format!(
            "SELECT relname::text FROM pg_class WHERE relname = '{name}' AND relkind IN ('r', 'v', 'm', 'p', 'f') \
             AND relnamespace = current_schema()::regnamespace"
        ),
        Dialect::Sqlite => {
            format!("SELECT name FROM sqlite_master WHERE name = '{name}' AND type IN ('table', 'view')")
        }
    };
    Ok(!tx.fetch_text("reading the catalog", statement).await?.is_empty())
}

/// Whether the mart's fact and the dimensions it groups by exist.
async fn tables_exist(tx: &mut Tx, mart: &Mart) -> Result<bool> {
    let mut tables: Vec<&str> = vec![mart.fact.as_str()];
    tables.extend(mart.group_by.iter().filter_map(|group| group.table.as_deref()));
    for table in tables {
        if !relation_exists(tx, table).await? {
            return Ok(false);
        }
    }
    Ok(true)
}
