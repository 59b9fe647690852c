//! A dimension's versions in the warehouse: read once per load by natural key, and the
//! planned changes applied to them by a few set-based statements.

use super::{KEYS, PLAN};
use crate::Result;
use crate::warehouse::cells::{Kind, Value};
use crate::warehouse::scd::{self, INFERRED_FROM_MICROS, Version};
use crate::warehouse::sql::{Sql, natural_text, quoted, where_staged};
use crate::warehouse::tx::Tx;

/// Reads every version of the keys staged in [`KEYS`] (`staged`), or of the whole table, by
/// natural key text, into a map sized for `keys` natural keys.
pub(super) async fn read_versions(
    tx: &mut Tx,
    sql: &Sql,
    table: &str,
    key: &str,
    natural_key: &[String],
    staged: bool,
    keys: usize,
) -> Result<scd::Existing> {
    let width = natural_key.len();
    let mut select = vec![format!("d.{key}")];
    select.extend(natural_key.iter().map(|column| format!("CAST(d.{column} AS TEXT)")));
    select.extend(["d.\"row_hash\"", "d.\"type1_hash\"", "d.\"valid_from\"", "d.\"valid_to\""].map(str::to_string));
    select.push(sql.flag_integer("d.\"is_current\""));
    select.push(sql.flag_integer("d.\"is_inferred\""));
    select.push("d.\"type1_from\"".to_string());
    let mut kinds = vec![Kind::Integer];
    kinds.extend(std::iter::repeat_n(Kind::Text, width));
    kinds.extend([Kind::Hash, Kind::Hash]);
    kinds.extend([Kind::Instant, Kind::Instant, Kind::Integer, Kind::Integer, Kind::Instant]);
    let mut statement = format!("SELECT {} FROM {table} d", select.join(", "));
    if staged {
        statement.push_str(&where_staged(KEYS, natural_key));
    }
    let mut existing = scd::Existing::with_capacity_and_hasher(keys, Default::default());
    tx.fetch_each("reading the versions of the delivered keys", statement, &kinds, |row| {
        let mut values = row.into_iter();
        let mut next = || values.next().unwrap_or(Value::Text(None));
        let key = next().integer().unwrap_or_default();
        let natural = natural_text((0..width).map(|_| next()));
        let (hash, type1_hash) = (next().hash(), next().hash());
        let valid_from = next().micros().unwrap_or(INFERRED_FROM_MICROS);
        let version = Version {
            key,
            hash,
            type1_hash,
            valid_from,
            valid_to: next().micros(),
            is_current: next().integer() == Some(1),
            is_inferred: next().integer() == Some(1),
            // A row written before the warehouse kept it: its columns are as old as the version.
            type1_from: next().micros().unwrap_or(valid_from),
        };
        existing.entry(natural).or_default().push(version);
    })
    .await?;
    Ok(existing)
}

/// The dimension the changes apply to: its quoted name and surrogate key, its data columns
/// (quoted) and its type 1 columns (unquoted).
pub(super) struct Target<'a> {
    pub(super) table: &'a str,
    pub(super) key: &'a str,
    pub(super) data: &'a [String],
    pub(super) type1: &'a [String],
}

/// Applies the staged changes in [`PLAN`]: copies of versions a back-dated change splits
/// (before their validity changes), validity (closing current versions before new ones open),
/// rewritten versions, then type 1 overwrites where a column differs. Returns the rows whose
/// type 1 columns changed.
pub(super) async fn apply_changes(
    tx: &mut Tx,
    sql: &Sql,
    target: &Target<'_>,
    any_type1: bool,
    copies: bool,
    run_id: &str,
) -> Result<u64> {
    let Target { table, key, data, type1 } = *target;
    let target = |column: &str| format!("{table}.{column}");
    let is_key = format!("{} = p.\"lakestar_key\"", target(key));
    if copies {
        let copied: Vec<String> = data.iter().map(|column| format!("d.{column}")).collect();
        tx.execute(
            "copying versions split by a back-dated change",
            format!(
                "INSERT INTO {table} ({key}, {columns}, \"row_hash\", \"type1_hash\", \"valid_from\", \"valid_to\", \
                 \"is_current\", \"is_inferred\", \"type1_from\", \"run_id\") \
                 SELECT p.\"lakestar_key\", {copied}, d.\"row_hash\", d.\"type1_hash\", p.\"lakestar_valid_from\", \
                 p.\"lakestar_valid_to\", p.\"lakestar_is_current\", d.\"is_inferred\", p.\"lakestar_type1_from\", $1 \
                 FROM {PLAN} p JOIN {table} d ON d.{key} = p.\"lakestar_copy_of\" WHERE p.\"lakestar_action\" = 'copy'",
                columns = data.join(", "),
                copied = copied.join(", "),
            ),
            Some(run_id),
        )
        .await?;
    }
    tx.execute(
        "closing versions",
        format!(
            "UPDATE {table} SET \"valid_from\" = p.\"lakestar_valid_from\", \"valid_to\" = p.\"lakestar_valid_to\", \
             \"is_current\" = p.\"lakestar_is_current\", \"type1_from\" = p.\"lakestar_type1_from\" \
             FROM {PLAN} p WHERE {is_key} AND p.\"lakestar_action\" = 'update' AND p.\"lakestar_row\" IS NULL"
        ),
        None,
    )
    .await?;
    let mut assignments: Vec<String> = data.iter().map(|column| format!("{column} = p.{column}")).collect();
    assignments.extend([
        "\"row_hash\" = p.\"row_hash\"".to_string(),
        "\"type1_hash\" = p.\"type1_hash\"".to_string(),
        "\"valid_from\" = p.\"lakestar_valid_from\"".to_string(),
        "\"valid_to\" = p.\"lakestar_valid_to\"".to_string(),
        "\"is_current\" = p.\"lakestar_is_current\"".to_string(),
        "\"is_inferred\" = FALSE".to_string(),
        "\"type1_from\" = p.\"lakestar_type1_from\"".to_string(),
        "\"run_id\" = $1".to_string(),
    ]);
    tx.execute(
        "rewriting versions",
        format!(
            "UPDATE {table} SET {} FROM {PLAN} p \
             WHERE {is_key} AND p.\"lakestar_action\" = 'update' AND p.\"lakestar_row\" IS NOT NULL",
            assignments.join(", "),
        ),
        Some(run_id),
    )
    .await?;
    if !any_type1 {
        return Ok(0);
    }
    let mut type1_updated = 0;
    let is_type1 = format!("{is_key} AND p.\"lakestar_action\" = 'type1'");
    if !type1.is_empty() {
        let type1 = quoted(type1)?;
        let mut assignments: Vec<String> = type1.iter().map(|column| format!("{column} = p.{column}")).collect();
        assignments.push("\"type1_hash\" = p.\"type1_hash\"".to_string());
        assignments.push("\"type1_from\" = p.\"lakestar_type1_from\"".to_string());
        assignments.push("\"run_id\" = $1".to_string());
        let differs: Vec<String> =
            type1.iter().map(|column| sql.differs(&target(column), &format!("p.{column}"))).collect();
        type1_updated = tx
            .execute(
                "overwriting type 1 columns",
                format!(
                    "UPDATE {table} SET {} FROM {PLAN} p WHERE {is_type1} AND ({})",
                    assignments.join(", "),
                    differs.join(" OR ")
                ),
                Some(run_id),
            )
            .await?;
    }
    // Rows equal in every column to a newer row (or written before the warehouse kept the
    // type 1 hash): the hash and the row's time are recorded.
    tx.execute(
        "recording type 1 hashes",
        format!(
            "UPDATE {table} SET \"type1_hash\" = p.\"type1_hash\", \"type1_from\" = p.\"lakestar_type1_from\" \
             FROM {PLAN} p WHERE {is_type1} AND ({} OR {})",
            sql.differs(&target("\"type1_hash\""), "p.\"type1_hash\""),
            sql.differs(&target("\"type1_from\""), "p.\"lakestar_type1_from\""),
        ),
        None,
    )
    .await?;
    Ok(type1_updated)
}
