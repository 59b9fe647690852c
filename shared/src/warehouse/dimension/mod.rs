//! Loading a dimension run: every row keyed and hashed (tracked columns, type 1 columns),
//! the versions of the delivered keys read once, the SCD merge planned in memory
//! ([`super::scd`]); versions that change are staged with the plan and applied by a few
//! statements (close, rewrite, overwrite type 1 columns), new versions are copied straight
//! into the table. A row equal to its current version costs two hashes and nothing in the
//! database.

mod keyed;
mod planned;
pub(super) mod rekey;
mod versions;

use std::collections::BTreeMap;
use std::fs::File;

use arrow::array::RecordBatch;

use super::TableCounts;
use super::bulk;
use super::cells::{Cells, StageBatch};
use super::curated::{batches, footprint, reopen};
use super::ddl::{self, quote, surrogate_key};
use super::fact::index::FastSet;
use super::scd::{self, Hash, Staged};
use super::sql::{Names, Sql, highest_key, quoted};
use super::steps::Steps;
use super::tx::Tx;
use crate::Result;
use crate::contract::{Contract, Dataset};
use keyed::KeyedRows;
use planned::{Layout, PlannedRows, plan_cells};
use versions::{Target, apply_changes, read_versions};

const KEYS: &str = "lakestar_keys";
const PLAN: &str = "lakestar_plan";

/// Columns of the plan table besides the data columns (named so no contract column clashes).
const PLAN_COLUMNS: [&str; 8] = [
    "lakestar_key",
    "lakestar_row",
    "lakestar_action",
    "lakestar_valid_from",
    "lakestar_valid_to",
    "lakestar_is_current",
    "lakestar_type1_from",
    "lakestar_copy_of",
];

/// The most rows a dimension load holds in memory: a delivery's curated batches are kept from
/// the first pass up to this many rows and [`KEPT_BYTES`] (larger ones are read from the files
/// again), and up to this many new versions are gathered to be copied in key order (more go in
/// file order).
const IN_KEY_ORDER: usize = 1 << 20;

/// The most uncompressed curated bytes a dimension load keeps in memory from its first pass
/// (a 512 MB Lambda holds them beside the versions and the plan).
const KEPT_BYTES: u64 = 128 << 20;

/// Loads a dimension run: a first pass keys and hashes every row on a thread of its own while
/// the database yields the versions those keys have (from the whole table when it is at most
/// twice the delivery, else for the staged keys; none from an empty table); the SCD merge is
/// planned in memory; changed versions are staged with their plan and applied by a few
/// statements; new versions are copied straight into the table (an empty table with its keys
/// and indexes set aside). Unchanged rows cost a hash and nothing in the database.
pub(crate) async fn load_dimension(
    tx: &mut Tx,
    dataset: &Dataset,
    contract: &Contract,
    run_id: &str,
    run_time: i64,
    files: Vec<File>,
) -> Result<(TableCounts, FastSet)> {
    let mut steps = Steps::new(run_id, &dataset.table.name);
    let load = DimensionLoad::new(tx, dataset, contract, run_id, run_time)?;
    let mut keyed = load.key_and_read_versions(tx, &files).await?;
    steps.done("keyed and hashed the rows, read the versions of their keys", keyed.staged.len());

    let plan = Planned::of(std::mem::take(&mut keyed.staged), std::mem::take(&mut keyed.existing), keyed.max_key);
    steps.done("planned the merge", plan.inserts.len() + plan.changes.len());

    let changes = plan.changes.len();
    let any_type1 = plan.counts.type1 > 0;
    let type1_updated =
        load.apply_changes(tx, &files, plan.changes, &plan.hashes, keyed.kept.clone(), any_type1, &mut steps).await?;
    if changes > 0 {
        steps.done("applied the changes", changes);
    }
    load.copy_new_versions(tx, &files, plan.inserts, &plan.hashes, keyed.kept.take(), keyed.empty, &mut steps).await?;
    let counts = plan.counts;
    let counts_table = TableCounts {
        inserted: counts.inserted,
        updated: counts.updated + type1_updated,
        unchanged: counts.unchanged + counts.type1 - type1_updated.min(counts.type1),
        new_versions: counts.new_versions,
        closed_versions: counts.closed_versions,
        type1_updates: type1_updated,
        completed: counts.completed,
        ..TableCounts::default()
    };
    Ok((counts_table, plan.history_changed))
}

/// One dimension load's names: the table, its surrogate key, its columns quoted and typed,
/// and which columns are the natural key, tracked (type 2), type 1, and the effective time.
struct DimensionLoad<'a> {
    run_id: &'a str,
    run_time: i64,
    sql: Sql,
    table: String,
    key: String,
    names: Names,
    data: Vec<String>,
    natural_key: Vec<String>,
    type1: Vec<String>,
    effective_from: Option<String>,
    types: BTreeMap<String, String>,
    key_positions: Vec<usize>,
    tracked_positions: Vec<usize>,
    type1_positions: Vec<usize>,
}

/// What the first pass found: every delivered row keyed and hashed, the versions of their
/// keys, the highest surrogate key, and the curated batches when they were kept.
struct Keyed {
    staged: Vec<Staged>,
    existing: scd::Existing,
    max_key: i64,
    kept: Option<Vec<RecordBatch>>,
    /// Whether the dimension was empty (its keys and indexes are then set aside for the copy).
    empty: bool,
}

/// The merge as planned: new versions to copy, changes to apply, each staged row's hashes,
/// and the natural keys the warehouse had whose history the plan changes (their facts may
/// now belong to another version).
struct Planned {
    inserts: Vec<scd::PlanRow>,
    changes: Vec<scd::PlanRow>,
    hashes: Vec<(Hash, Hash)>,
    counts: PlanCounts,
    history_changed: FastSet,
}

/// The plan's counts.
struct PlanCounts {
    inserted: u64,
    updated: u64,
    type1: u64,
    unchanged: u64,
    new_versions: u64,
    closed_versions: u64,
    completed: u64,
}

impl Planned {
    /// Plans the merge; then each staged row's hashes by its number, for the rows the plan writes.
    fn of(staged: Vec<Staged>, existing: scd::Existing, max_key: i64) -> Planned {
        let scd::Plan { rows, inserted, updated, type1, unchanged, completed, closed, reshaped } =
            scd::plan(&staged, existing, max_key);
        let history_changed: FastSet = reshaped.into_iter().collect();
        let mut hashes = vec![(0, 0); staged.len()];
        for row in staged {
            if let Some(slot) = hashes.get_mut(row.row as usize) {
                *slot = (row.hash, row.type1_hash);
            }
        }
        let (inserts, changes): (Vec<scd::PlanRow>, Vec<scd::PlanRow>) =
            rows.into_iter().partition(|row| row.action == scd::Action::Insert);
        let copies = changes.iter().filter(|row| row.action == scd::Action::Copy).count() as u64;
        let new_versions = (inserts.len() as u64 + copies).saturating_sub(inserted);
        let closed_versions = closed;
        let counts = PlanCounts { inserted, updated, type1, unchanged, new_versions, closed_versions, completed };
        Planned { inserts, changes, hashes, counts, history_changed }
    }
}

impl<'a> DimensionLoad<'a> {
    fn new(
        tx: &Tx,
        dataset: &Dataset,
        contract: &Contract,
        run_id: &'a str,
        run_time: i64,
    ) -> Result<DimensionLoad<'a>> {
        let sql = Sql { dialect: tx.dialect() };
        let names = Names::of(dataset);
        let tracked: Vec<String> = dataset
            .columns
            .iter()
            .filter(|column| column.config.scd == Some(2))
            .map(|column| column.target_name().to_string())
            .collect();
        let type1: Vec<String> = names
            .data
            .iter()
            .filter(|name| !tracked.contains(name) && !names.natural_key.contains(name))
            .cloned()
            .collect();
        let effective_from = dataset
            .table
            .effective_from
            .as_ref()
            .map(|name| dataset.column(name).map_or(name.clone(), |column| column.target_name().to_string()));
        let types = ddl::table_columns(dataset, contract, sql.dialect)?
            .into_iter()
            .map(|column| (column.name, column.sql_type))
            .collect();
        let position = |name: &String| names.data.iter().position(|candidate| candidate == name);
        Ok(DimensionLoad {
            run_id,
            run_time,
            table: quote(&dataset.table.name)?,
            key: quote(&surrogate_key(&dataset.table.name))?,
            data: quoted(&names.data)?,
            natural_key: quoted(&names.natural_key)?,
            key_positions: names.natural_key.iter().filter_map(position).collect(),
            tracked_positions: tracked.iter().filter_map(position).collect(),
            type1_positions: type1.iter().filter_map(position).collect(),
            sql,
            names,
            type1,
            effective_from,
            types,
        })
    }

    /// `name` (quoted as `quoted_name`) with its warehouse type, for a staging table.
    fn typed(&self, name: &str, quoted_name: &str) -> String {
        format!("{quoted_name} {}", self.types.get(name).map_or("TEXT", String::as_str))
    }

    /// Keys and hashes every row on a thread of its own while the database stages the natural
    /// keys or reads the versions. Which versions to read: none from an empty table (a first
    /// delivery, whose rows are then copied in with the table's keys and indexes set aside);
    /// all of them from a table at most twice the delivery's size (one scan costs less than
    /// staging the keys and joining them); else the versions of the delivered keys, staged.
    async fn key_and_read_versions(&self, tx: &mut Tx, files: &[File]) -> Result<Keyed> {
        let (delivered, delivered_bytes) = footprint(files)?;
        let limit = delivered.saturating_mul(2).saturating_add(1);
        let holding = tx.count_up_to(&self.table, limit).await?;
        let empty = holding == 0;
        let stage_keys = holding >= limit;
        // A whole table's versions fill a map sized once (not grown 18 times); staged keys, many
        // of them new, are not guessed at.
        let keys = if stage_keys { 0 } else { holding.min(IN_KEY_ORDER as u64) as usize };
        let keyed = KeyedRows {
            batches: Box::new(batches(reopen(files)?, None)),
            data: self.names.data.clone(),
            natural_key: if stage_keys { self.names.natural_key.clone() } else { Vec::new() },
            key_positions: self.key_positions.clone(),
            tracked_positions: self.tracked_positions.clone(),
            type1_positions: self.type1_positions.clone(),
            effective_from: self.effective_from.clone(),
            run_time: self.run_time,
            staged: Vec::with_capacity(delivered.min(1 << 20) as usize),
            // Kept from this pass, so the rows the merge writes are taken from memory instead of
            // reading the files again (twice in a merge: the changes, then the new versions).
            kept: (delivered <= IN_KEY_ORDER as u64 && delivered_bytes <= KEPT_BYTES).then(Vec::new),
        };
        let (table, key, natural_key) = (&self.table, &self.key, &self.natural_key);
        let (staged, existing, kept) = if empty {
            let (staged, kept) = keyed.drain().await?;
            (staged, scd::Existing::default(), kept)
        } else if stage_keys {
            let definitions: Vec<String> = self
                .names
                .natural_key
                .iter()
                .zip(natural_key)
                .map(|(name, quoted_name)| self.typed(name, quoted_name))
                .collect();
            tx.create_temp(KEYS, &definitions).await?;
            let (keyed, staged) = tx.stage_from(KEYS, natural_key, keyed).await?;
            staged?;
            // Statistics, so that PostgreSQL joins a large delivery by hash instead of one index
            // probe per key (0.8 s against 0.1 s for 200 000 keys); a small one still probes.
            tx.analyze(KEYS).await?;
            let versions = read_versions(tx, &self.sql, table, key, natural_key, true, keys).await?;
            tx.drop_temp(&[KEYS]).await?;
            (keyed.staged, versions, keyed.kept)
        } else {
            let (keyed, versions) =
                tokio::join!(keyed.drain(), read_versions(tx, &self.sql, table, key, natural_key, false, keys));
            let (staged, kept) = keyed?;
            (staged, versions?, kept)
        };
        // A whole-table read saw every key; staged keys did not.
        let max_key = if stage_keys {
            highest_key(tx, table, key).await?
        } else {
            existing.values().flatten().map(|version| version.key).max().unwrap_or(0)
        };
        Ok(Keyed { staged, existing, max_key, kept, empty })
    }

    /// Versions that change in place (closed, rewritten, type 1 overwritten): staged with the
    /// columns of the rows they take, and applied by three statements (the type 1 ones only
    /// when `any_type1`). Returns the rows whose type 1 columns changed.
    #[allow(clippy::too_many_arguments)]
    async fn apply_changes(
        &self,
        tx: &mut Tx,
        files: &[File],
        changes: Vec<scd::PlanRow>,
        hashes: &[(Hash, Hash)],
        kept: Option<Vec<RecordBatch>>,
        any_type1: bool,
        steps: &mut Steps<'_>,
    ) -> Result<u64> {
        if changes.is_empty() {
            return Ok(0);
        }
        let (sql, data) = (&self.sql, &self.data);
        let count = changes.len();
        let mut definitions = vec![
            format!("\"lakestar_key\" {}", sql.key_type()),
            format!("\"lakestar_row\" {}", sql.key_type()),
            "\"lakestar_action\" TEXT".to_string(),
            format!("\"lakestar_valid_from\" {}", sql.timestamp_type()),
            format!("\"lakestar_valid_to\" {}", sql.timestamp_type()),
            format!("\"lakestar_is_current\" {}", sql.boolean_type()),
            format!("\"lakestar_type1_from\" {}", sql.timestamp_type()),
            format!("\"lakestar_copy_of\" {}", sql.key_type()),
        ];
        definitions.extend(self.names.data.iter().zip(data).map(|(name, quoted_name)| self.typed(name, quoted_name)));
        let hash_type = ddl::hash_type(sql.dialect);
        definitions.push(format!("\"row_hash\" {hash_type}"));
        definitions.push(format!("\"type1_hash\" {hash_type}"));
        tx.create_temp(PLAN, &definitions).await?;
        let mut plan_columns: Vec<String> = PLAN_COLUMNS.iter().map(|name| format!("\"{name}\"")).collect();
        plan_columns.extend(data.iter().cloned());
        plan_columns.push("\"row_hash\"".to_string());
        plan_columns.push("\"type1_hash\"".to_string());
        // Versions whose validity alone changes need no curated columns.
        let copies = changes.iter().any(|row| row.action == scd::Action::Copy);
        let (with_rows, validity): (Vec<scd::PlanRow>, Vec<scd::PlanRow>) =
            changes.into_iter().partition(|row| row.row.is_some());
        let validity: Vec<StageBatch> = validity
            .chunks(16_384)
            .map(|chunk| {
                let mut columns = plan_cells(chunk);
                columns.extend((0..data.len() + 2).map(|_| Cells::Constant(None)));
                StageBatch { columns, rows: chunk.len() }
            })
            .collect();
        let producer =
            PlannedRows::new(files, with_rows, hashes, Layout::Plan, self.names.data.clone(), validity, kept)?;
        tx.stage_from(PLAN, &plan_columns, producer).await?.1?;
        if count > 10_000 {
            // Hash joins for the statements below when the plan is large.
            tx.analyze(PLAN).await?;
        }
        steps.done("staged the changes", count);
        let target = Target { table: &self.table, key: &self.key, data, type1: &self.type1 };
        let type1_updated = apply_changes(tx, sql, &target, any_type1, copies, self.run_id).await?;
        tx.drop_temp(&[PLAN]).await?;
        Ok(type1_updated)
    }

    /// New versions, copied straight into the table (after the closes of
    /// [`DimensionLoad::apply_changes`], so that the one current version per key holds
    /// throughout); into an empty table with its keys and indexes set aside and built again.
    #[allow(clippy::too_many_arguments)]
    async fn copy_new_versions(
        &self,
        tx: &mut Tx,
        files: &[File],
        inserts: Vec<scd::PlanRow>,
        hashes: &[(Hash, Hash)],
        kept: Option<Vec<RecordBatch>>,
        empty: bool,
        steps: &mut Steps<'_>,
    ) -> Result<()> {
        if inserts.is_empty() {
            return Ok(());
        }
        let count = inserts.len();
        let set_aside = if empty { bulk::set_aside(tx, &self.table).await? } else { bulk::SetAside::default() };
        let mut columns = vec![self.key.clone()];
        columns.extend(self.data.iter().cloned());
        columns.extend(
            ["row_hash", "type1_hash", "valid_from", "valid_to", "is_current", "is_inferred", "run_id", "type1_from"]
                .map(|name| format!("\"{name}\"")),
        );
        let layout = Layout::Table { run_id: self.run_id.to_string() };
        let producer = PlannedRows::new(files, inserts, hashes, layout, self.names.data.clone(), Vec::new(), kept)?;
        tx.stage_from_as(&self.table, &columns, producer, set_aside.copy_options()).await?.1?;
        steps.done("copied the new versions", count);
        if !set_aside.is_empty() {
            set_aside.rebuild(tx).await?;
            steps.done("built the table's keys and indexes", count);
        }
        Ok(())
    }
}
