//! Loading a dimension run: every row keyed and hashed (tracked columns, type 1 columns),
//! the versions of the delivered keys read once, the SCD merge planned in memory
//! ([`super::scd`]); versions that change are staged with the plan and applied by a few
//! statements (close, rewrite, overwrite type 1 columns), new versions are copied straight
//! into the table. A row equal to its current version costs two hashes and nothing in the
//! database.

use std::collections::BTreeMap;
use std::fs::File;

use arrow::array::{Array, RecordBatch};
use sha2::{Digest, Sha256};

use super::bulk;
use super::ddl::{self, quote, surrogate_key};
use super::merge::{
    Names, Sql, Steps, TableCounts, batches, column, footprint, highest_key, natural_text, quoted, reopen, where_staged,
};
use super::scd::{self, Hash, INFERRED_FROM_MICROS, Staged, Version};
use super::text::TextColumn;
use super::tx::{Cells, Kind, Producer, StageBatch, Tx, Value};
use crate::contract::{Contract, Dataset};
use crate::{Error, Result};

const KEYS: &str = "lakestar_keys";
const PLAN: &str = "lakestar_plan";

/// Columns of the plan table besides the data columns (named so no contract column clashes).
const PLAN_COLUMNS: [&str; 6] = [
    "lakestar_key",
    "lakestar_row",
    "lakestar_action",
    "lakestar_valid_from",
    "lakestar_valid_to",
    "lakestar_is_current",
];

/// The plan's own cells for `rows`, in [`PLAN_COLUMNS`] order.
fn plan_cells(rows: &[scd::PlanRow]) -> Vec<Cells> {
    let action = |action: &scd::Action| match action {
        scd::Action::Insert => "insert",
        scd::Action::Update => "update",
        scd::Action::Type1 => "type1",
    };
    vec![
        Cells::Integers(rows.iter().map(|row| Some(row.key)).collect()),
        Cells::Integers(rows.iter().map(|row| row.row).collect()),
        Cells::Texts(rows.iter().map(|row| Some(action(&row.action).to_string())).collect()),
        Cells::Instants(rows.iter().map(|row| Some(row.valid_from)).collect()),
        Cells::Instants(rows.iter().map(|row| row.valid_to).collect()),
        flags(rows.iter().map(|row| row.is_current)),
    ]
}

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
) -> Result<TableCounts> {
    let mut steps = Steps::new(run_id, &dataset.table.name);
    let sql = Sql { dialect: tx.dialect() };
    let table = quote(&dataset.table.name)?;
    let key = quote(&surrogate_key(&dataset.table.name))?;
    let names = Names::of(dataset);
    let data = quoted(&names.data)?;
    let natural_key = quoted(&names.natural_key)?;
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
    let types: BTreeMap<String, String> = ddl::table_columns(dataset, contract, sql.dialect)?
        .into_iter()
        .map(|column| (column.name, column.sql_type))
        .collect();
    let typed = |name: &String, quoted_name: &String| {
        format!("{quoted_name} {}", types.get(name).map_or("TEXT", String::as_str))
    };
    let position = |name: &String| names.data.iter().position(|candidate| candidate == name);
    let key_positions: Vec<usize> = names.natural_key.iter().filter_map(position).collect();
    let tracked_positions: Vec<usize> = tracked.iter().filter_map(position).collect();
    let type1_positions: Vec<usize> = type1.iter().filter_map(position).collect();

    // Which versions to read: none from an empty table (a first delivery, whose rows are then
    // copied in with the table's keys and indexes set aside); all of them from a table at most
    // twice the delivery's size (one scan costs less than staging the keys and joining them);
    // else the versions of the delivered keys, staged.
    let (delivered, delivered_bytes) = footprint(&files)?;
    let limit = delivered.saturating_mul(2).saturating_add(1);
    let holding = bulk::count_up_to(tx, &table, limit).await?;
    let empty = holding == 0;
    let stage_keys = holding >= limit;
    // A whole table's versions fill a map sized once (not grown 18 times); staged keys, many
    // of them new, are not guessed at.
    let keys = if stage_keys { 0 } else { holding.min(IN_KEY_ORDER as u64) as usize };

    // Every row keyed and hashed on a thread of its own, while the database stages the natural
    // keys or reads the versions of the whole table.
    let keyed = KeyedRows {
        batches: Box::new(batches(reopen(&files)?, None)),
        data: names.data.clone(),
        natural_key: if stage_keys { names.natural_key.clone() } else { Vec::new() },
        key_positions,
        tracked_positions,
        type1_positions,
        effective_from,
        run_time,
        staged: Vec::with_capacity(delivered.min(1 << 20) as usize),
        // Kept from this pass, so the rows the merge writes are taken from memory instead of
        // reading the files again (twice in a merge: the changes, then the new versions).
        kept: (delivered <= IN_KEY_ORDER as u64 && delivered_bytes <= KEPT_BYTES).then(Vec::new),
    };
    let (staged, existing, mut kept) = if empty {
        let (staged, kept) = keyed.drain().await?;
        (staged, scd::Existing::default(), kept)
    } else if stage_keys {
        let key_definitions: Vec<String> =
            names.natural_key.iter().zip(&natural_key).map(|(name, quoted_name)| typed(name, quoted_name)).collect();
        tx.create_temp(KEYS, &key_definitions).await?;
        let (keyed, staged) = tx.stage_from(KEYS, &natural_key, keyed).await?;
        staged?;
        // Statistics, so that PostgreSQL joins a large delivery by hash instead of one index
        // probe per key (0.8 s against 0.1 s for 200 000 keys); a small one still probes.
        tx.analyze(KEYS).await?;
        let versions = read_versions(tx, &sql, &table, &key, &natural_key, true, keys).await?;
        tx.drop_temp(&[KEYS]).await?;
        (keyed.staged, versions, keyed.kept)
    } else {
        let (keyed, versions) =
            tokio::join!(keyed.drain(), read_versions(tx, &sql, &table, &key, &natural_key, false, keys));
        let (staged, kept) = keyed?;
        (staged, versions?, kept)
    };
    // A whole-table read saw every key; staged keys did not.
    let max_key = if stage_keys {
        highest_key(tx, &table, &key).await?
    } else {
        existing.values().flatten().map(|version| version.key).max().unwrap_or(0)
    };
    steps.done("keyed and hashed the rows, read the versions of their keys", staged.len());

    // The plan; then each staged row's hashes by its number, for the rows the plan writes.
    let scd::Plan { rows: planned, inserted, updated, type1: type1_rows, unchanged } =
        scd::plan(&staged, existing, max_key);
    let mut hashes = vec![(0, 0); staged.len()];
    for row in staged {
        if let Some(slot) = hashes.get_mut(row.row as usize) {
            *slot = (row.hash, row.type1_hash);
        }
    }
    let (inserts, changes): (Vec<scd::PlanRow>, Vec<scd::PlanRow>) =
        planned.into_iter().partition(|row| row.action == scd::Action::Insert);
    steps.done("planned the merge", inserts.len() + changes.len());

    // Versions that change in place (closed, rewritten, type 1 overwritten): staged with the
    // columns of the rows they take, and applied by three statements.
    let mut type1_updated = 0;
    if !changes.is_empty() {
        let count = changes.len();
        let mut definitions = vec![
            format!("\"lakestar_key\" {}", sql.key_type()),
            format!("\"lakestar_row\" {}", sql.key_type()),
            "\"lakestar_action\" TEXT".to_string(),
            format!("\"lakestar_valid_from\" {}", sql.timestamp_type()),
            format!("\"lakestar_valid_to\" {}", sql.timestamp_type()),
            format!("\"lakestar_is_current\" {}", sql.boolean_type()),
        ];
        definitions.extend(names.data.iter().zip(&data).map(|(name, quoted_name)| typed(name, quoted_name)));
        let hash_type = ddl::hash_type(sql.dialect);
        definitions.push(format!("\"row_hash\" {hash_type}"));
        definitions.push(format!("\"type1_hash\" {hash_type}"));
        tx.create_temp(PLAN, &definitions).await?;
        let mut plan_columns: Vec<String> = PLAN_COLUMNS.iter().map(|name| format!("\"{name}\"")).collect();
        plan_columns.extend(data.iter().cloned());
        plan_columns.push("\"row_hash\"".to_string());
        plan_columns.push("\"type1_hash\"".to_string());
        // Versions whose validity alone changes need no curated columns.
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
            PlannedRows::new(&files, with_rows, &hashes, Layout::Plan, names.data.clone(), validity, kept.clone())?;
        tx.stage_from(PLAN, &plan_columns, producer).await?.1?;
        if count > 10_000 {
            // Hash joins for the statements below when the plan is large.
            tx.analyze(PLAN).await?;
        }
        steps.done("staged the changes", count);
        let target = Target { table: &table, key: &key, data: &data, type1: &type1 };
        type1_updated = apply_changes(tx, &sql, &target, type1_rows > 0, run_id).await?;
        tx.drop_temp(&[PLAN]).await?;
        steps.done("applied the changes", count);
    }

    // New versions, copied straight into the table (after the closes above, so that the one
    // current version per key holds throughout).
    if !inserts.is_empty() {
        let count = inserts.len();
        let set_aside = if empty { bulk::set_aside(tx, &table).await? } else { bulk::SetAside::default() };
        let mut columns = vec![key.clone()];
        columns.extend(data.iter().cloned());
        columns.extend(
            ["row_hash", "type1_hash", "valid_from", "valid_to", "is_current", "is_inferred", "run_id"]
                .map(|name| format!("\"{name}\"")),
        );
        let layout = Layout::Table { run_id: run_id.to_string() };
        let producer = PlannedRows::new(&files, inserts, &hashes, layout, names.data.clone(), Vec::new(), kept.take())?;
        tx.stage_from_as(&table, &columns, producer, set_aside.copy_options()).await?.1?;
        steps.done("copied the new versions", count);
        if !set_aside.is_empty() {
            set_aside.rebuild(tx).await?;
            steps.done("built the table's keys and indexes", count);
        }
    }
    Ok(TableCounts {
        inserted,
        updated: updated + type1_updated,
        unchanged: unchanged + type1_rows - type1_updated.min(type1_rows),
        inferred: 0,
    })
}

/// The first pass of a dimension load: every row's natural key, hashes and effective time
/// gathered in `staged`; as a [`Producer`], the natural keys to stage.
struct KeyedRows {
    batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    data: Vec<String>,
    /// The natural key columns to stage (none when the keys are not staged).
    natural_key: Vec<String>,
    key_positions: Vec<usize>,
    tracked_positions: Vec<usize>,
    type1_positions: Vec<usize>,
    effective_from: Option<String>,
    /// The run's time, in microseconds since the epoch: when rows without an effective time
    /// take effect.
    run_time: i64,
    staged: Vec<Staged>,
    /// Every batch read, when kept.
    kept: Option<Vec<RecordBatch>>,
}

impl KeyedRows {
    /// Keys and hashes `batch`'s rows; returns its natural key columns.
    fn key(&mut self, batch: &RecordBatch) -> Result<StageBatch> {
        let rows = batch.num_rows();
        let cells: Vec<Cells> = self.data.iter().map(|name| column(batch, name)).collect::<Result<_>>()?;
        let effective = match &self.effective_from {
            Some(name) => Some(column(batch, name)?),
            None => None,
        };
        let mut buffer = String::new();
        for row in 0..rows {
            let mut natural = String::new();
            for (part, &index) in self.key_positions.iter().enumerate() {
                if part > 0 {
                    natural.push('\u{1f}');
                }
                cells[index].write(row, &mut natural);
            }
            let when = effective.as_ref().and_then(|cells| effective_micros(cells, row)).unwrap_or(self.run_time);
            self.staged.push(Staged {
                row: self.staged.len() as i64,
                natural_key: natural,
                hash: row_hash(self.tracked_positions.iter().map(|&index| &cells[index]), row, &mut buffer),
                type1_hash: row_hash(self.type1_positions.iter().map(|&index| &cells[index]), row, &mut buffer),
                effective: when,
            });
        }
        let keys: Vec<Cells> = self.natural_key.iter().map(|name| column(batch, name)).collect::<Result<_>>()?;
        Ok(StageBatch { columns: keys, rows })
    }

    /// Keys and hashes every row on a blocking thread, staging nothing.
    async fn drain(mut self) -> Result<(Vec<Staged>, Option<Vec<RecordBatch>>)> {
        tokio::task::spawn_blocking(move || {
            while let Some(batch) = self.next_batch() {
                batch?;
            }
            Ok((self.staged, self.kept))
        })
        .await
        .map_err(|error| Error::WarehouseLoad(format!("the keying thread failed: {error}")))?
    }
}

impl Producer for KeyedRows {
    fn next_batch(&mut self) -> Option<Result<StageBatch>> {
        let batch = self.batches.next()?;
        Some(batch.and_then(|batch| {
            let keys = self.key(&batch)?;
            if let Some(kept) = &mut self.kept {
                kept.push(batch);
            }
            Ok(keys)
        }))
    }
}

/// Where [`PlannedRows`] go, which decides their columns.
enum Layout {
    /// The plan table: [`PLAN_COLUMNS`], the data columns, the hashes.
    Plan,
    /// The dimension itself: key, data columns, hashes, validity, flags, run.
    Table { run_id: String },
}

/// The most rows a dimension load holds in memory: a delivery's curated batches are kept from
/// the first pass up to this many rows and [`KEPT_BYTES`] (larger ones are read from the files
/// again), and up to this many new versions are gathered to be copied in key order (more go in
/// file order).
const IN_KEY_ORDER: usize = 1 << 20;

/// The most uncompressed curated bytes a dimension load keeps in memory from its first pass
/// (a 512 MB Lambda holds them beside the versions and the plan).
const KEPT_BYTES: u64 = 128 << 20;

/// Rows per batch when copying in key order.
const ORDERED_BATCH: usize = 16_384;

/// Plan rows with the curated columns of the staged rows they take, made on the staging
/// thread in one more pass over the curated parts; `then` follows (rows without columns).
///
/// New versions go into the table in key order, which is also natural-key order: each of the
/// table's indexes then receives its keys sorted, and PostgreSQL's sort finds them in order
/// (a first delivery's three index builds take a third less time). Up to [`IN_KEY_ORDER`]
/// rows are gathered for that; more go in file order.
struct PlannedRows {
    batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    /// Staged row number → index in `rows`.
    picked: Vec<Option<u32>>,
    rows: Vec<(scd::PlanRow, Hash, Hash)>,
    offset: usize,
    layout: Layout,
    data: Vec<String>,
    then: std::vec::IntoIter<StageBatch>,
    /// In key order: the rows to gather, then gathered.
    ordered: Option<Ordered>,
}

/// A curated batch with rows the plan writes.
struct Picked {
    batch: RecordBatch,
    /// The rows' indexes in the batch.
    indexes: Vec<u32>,
    /// Their indexes in [`PlannedRows`]' `rows`.
    planned: Vec<u32>,
}

/// The rows [`PlannedRows`] copies in key order.
enum Ordered {
    /// Not gathered yet; every curated batch when the first pass kept them (else the files
    /// are read).
    Pending(Vec<RecordBatch>),
    /// Gathered from every curated batch.
    Gathered {
        /// Curated batches (or each one's picked rows).
        held: Vec<RecordBatch>,
        /// Index in `rows` → (held batch, row in it).
        places: Vec<(usize, usize)>,
        /// The next index in `rows` to send.
        next: usize,
    },
}

impl PlannedRows {
    /// `rows` (each with its staged row) take their hashes out of `hashes`; `kept` are the
    /// curated batches when the first pass kept them (then the files are not read again).
    fn new(
        files: &[File],
        rows: Vec<scd::PlanRow>,
        hashes: &[(Hash, Hash)],
        layout: Layout,
        data: Vec<String>,
        then: Vec<StageBatch>,
        kept: Option<Vec<RecordBatch>>,
    ) -> Result<PlannedRows> {
        let mut picked = vec![None; hashes.len()];
        let mut with_hashes = Vec::with_capacity(rows.len());
        for planned in rows {
            let Some(row) = planned.row.map(|row| row as usize).filter(|&row| row < hashes.len()) else {
                continue;
            };
            picked[row] = Some(with_hashes.len() as u32);
            let (hash, type1_hash) = hashes[row];
            with_hashes.push((planned, hash, type1_hash));
        }
        let in_key_order = matches!(layout, Layout::Table { .. }) && with_hashes.len() <= IN_KEY_ORDER;
        type Batches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;
        let (batches, pending): (Batches, Vec<RecordBatch>) = match kept {
            _ if with_hashes.is_empty() => (Box::new(std::iter::empty()), Vec::new()),
            Some(kept) if in_key_order => (Box::new(std::iter::empty()), kept),
            Some(kept) => (Box::new(kept.into_iter().map(Ok)), Vec::new()),
            None => (Box::new(batches(reopen(files)?, None)), Vec::new()),
        };
        let ordered = in_key_order.then(|| Ordered::Pending(pending));
        Ok(PlannedRows { batches, picked, rows: with_hashes, offset: 0, layout, data, then: then.into_iter(), ordered })
    }

    /// The next batch's picked rows in file order; `None` at the end of the files.
    fn next_picked(&mut self) -> Option<Result<Picked>> {
        loop {
            let batch = match self.batches.next()? {
                Ok(batch) => batch,
                Err(error) => return Some(Err(error)),
            };
            let count = batch.num_rows();
            let (indexes, planned): (Vec<u32>, Vec<u32>) = (0..count)
                .filter_map(|row| {
                    self.picked.get(self.offset + row).copied().flatten().map(|index| (row as u32, index))
                })
                .unzip();
            self.offset += count;
            if !indexes.is_empty() {
                return Some(Ok(Picked { batch, indexes, planned }));
            }
        }
    }

    /// The next batch in key order: every curated batch's picked rows are gathered first.
    fn next_in_order(&mut self) -> Option<Result<StageBatch>> {
        if let Some(Ordered::Pending(kept)) = &mut self.ordered {
            let mut held = std::mem::take(kept);
            let mut places = vec![None; self.rows.len()];
            if !held.is_empty() {
                let mut starts = Vec::with_capacity(held.len());
                let mut rows = 0;
                for batch in &held {
                    starts.push(rows);
                    rows += batch.num_rows();
                }
                for (place, (planned, _, _)) in places.iter_mut().zip(&self.rows) {
                    let Some(row) = planned.row.map(|row| row as usize).filter(|&row| row < rows) else {
                        continue;
                    };
                    let batch = starts.partition_point(|&start| start <= row) - 1;
                    *place = Some((batch, row - starts[batch]));
                }
            }
            while let Some(next) = self.next_picked() {
                let Picked { batch, indexes, planned } = match next {
                    Ok(picked) => picked,
                    Err(error) => return Some(Err(error)),
                };
                for (position, &index) in planned.iter().enumerate() {
                    if let Some(place) = places.get_mut(index as usize) {
                        *place = Some((held.len(), position));
                    }
                }
                match take(batch, indexes) {
                    Ok(taken) => held.push(taken),
                    Err(error) => return Some(Err(error)),
                }
            }
            let Some(places) = places.into_iter().collect::<Option<Vec<_>>>() else {
                return Some(Err(Error::WarehouseLoad(
                    "a planned version's row is missing from the curated files (they changed during the load)"
                        .to_string(),
                )));
            };
            self.ordered = Some(Ordered::Gathered { held, places, next: 0 });
        }
        let Some(Ordered::Gathered { held, places, next }) = &mut self.ordered else {
            return None;
        };
        let start = *next;
        let mut end = (start + ORDERED_BATCH).min(places.len());
        if start == end {
            return None;
        }
        // Rows that follow each other in one curated batch (a delivery sorted by its natural
        // key) go as a slice of it, without copying them.
        let (first_batch, first_row) = places[start];
        let run = places[start..end]
            .iter()
            .zip(first_row..)
            .take_while(|&(&(batch, row), expected)| batch == first_batch && row == expected)
            .count();
        let batch = if run >= ORDERED_BATCH / 16 {
            end = start + run;
            held[first_batch].slice(first_row, run)
        } else {
            let held: Vec<&RecordBatch> = held.iter().collect();
            match arrow::compute::interleave_record_batch(&held, &places[start..end]) {
                Ok(batch) => batch,
                Err(error) => return Some(Err(Error::arrow("putting the new versions in key order", error))),
            }
        };
        *next = end;
        let planned: Vec<u32> = (start as u32..end as u32).collect();
        Some(self.encode(batch, &planned))
    }

    /// The staging batch of `taken`'s rows, which take the plan rows `planned`.
    fn encode(&self, taken: RecordBatch, planned: &[u32]) -> Result<StageBatch> {
        let rows: Vec<&(scd::PlanRow, Hash, Hash)> = planned.iter().map(|&index| &self.rows[index as usize]).collect();
        let mut columns = Vec::with_capacity(self.data.len() + 10);
        if let Layout::Plan = self.layout {
            columns.extend(plan_cells(&rows.iter().map(|row| row.0.clone()).collect::<Vec<_>>()));
        } else {
            columns.push(Cells::Integers(rows.iter().map(|row| Some(row.0.key)).collect()));
        }
        for name in &self.data {
            columns.push(column(&taken, name)?);
        }
        columns.push(Cells::Hashes(rows.iter().map(|row| row.1).collect()));
        columns.push(Cells::Hashes(rows.iter().map(|row| row.2).collect()));
        if let Layout::Table { run_id } = &self.layout {
            columns.extend([
                Cells::Instants(rows.iter().map(|row| Some(row.0.valid_from)).collect()),
                Cells::Instants(rows.iter().map(|row| row.0.valid_to).collect()),
                flags(rows.iter().map(|row| row.0.is_current)),
                Cells::Constant(Some("0".to_string())),
                Cells::Constant(Some(run_id.clone())),
            ]);
        }
        Ok(StageBatch { columns, rows: rows.len() })
    }
}

impl Producer for PlannedRows {
    fn next_batch(&mut self) -> Option<Result<StageBatch>> {
        let next = if self.ordered.is_some() {
            self.next_in_order()
        } else {
            self.next_picked().map(|picked| {
                picked.and_then(|Picked { batch, indexes, planned }| self.encode(take(batch, indexes)?, &planned))
            })
        };
        next.or_else(|| self.then.next().map(Ok))
    }
}

/// `batch`'s rows at `indexes` (the batch itself when they are all of its rows, in order).
fn take(batch: RecordBatch, indexes: Vec<u32>) -> Result<RecordBatch> {
    // A first delivery picks every row: no copy of the batch.
    if indexes.len() == batch.num_rows() {
        return Ok(batch);
    }
    arrow::compute::take_record_batch(&batch, &arrow::array::UInt32Array::from(indexes))
        .map_err(|error| Error::arrow("picking the rows the merge writes", error))
}

/// Reads every version of the keys staged in [`KEYS`] (`staged`), or of the whole table, by
/// natural key text, into a map sized for `keys` natural keys.
async fn read_versions(
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
    let mut kinds = vec![Kind::Integer];
    kinds.extend(std::iter::repeat_n(Kind::Text, width));
    kinds.extend([Kind::Hash, Kind::Hash]);
    kinds.extend([Kind::Instant, Kind::Instant, Kind::Integer, Kind::Integer]);
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
        let version = Version {
            key,
            hash: next().hash(),
            type1_hash: next().hash(),
            valid_from: next().micros().unwrap_or(INFERRED_FROM_MICROS),
            valid_to: next().micros(),
            is_current: next().integer() == Some(1),
            is_inferred: next().integer() == Some(1),
        };
        existing.entry(natural).or_default().push(version);
    })
    .await?;
    Ok(existing)
}

/// The dimension the changes apply to: its quoted name and surrogate key, its data columns
/// (quoted) and its type 1 columns (unquoted).
struct Target<'a> {
    table: &'a str,
    key: &'a str,
    data: &'a [String],
    type1: &'a [String],
}

/// Applies the staged changes in [`PLAN`]: validity first (closing current versions before
/// new ones open), then rewritten versions, then type 1 overwrites where a column differs.
/// Returns the rows whose type 1 columns changed.
async fn apply_changes(tx: &mut Tx, sql: &Sql, target: &Target<'_>, any_type1: bool, run_id: &str) -> Result<u64> {
    let Target { table, key, data, type1 } = *target;
    let target = |column: &str| format!("{table}.{column}");
    let is_key = format!("{} = p.\"lakestar_key\"", target(key));
    tx.execute(
        "closing versions",
        format!(
            "UPDATE {table} SET \"valid_to\" = p.\"lakestar_valid_to\", \"is_current\" = p.\"lakestar_is_current\" \
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
    // Rows written before the warehouse kept the type 1 hash, equal in every column.
    tx.execute(
        "recording type 1 hashes",
        format!(
            "UPDATE {table} SET \"type1_hash\" = p.\"type1_hash\" FROM {PLAN} p WHERE {is_type1} AND {}",
            sql.differs(&target("\"type1_hash\""), "p.\"type1_hash\"")
        ),
        None,
    )
    .await?;
    Ok(type1_updated)
}

/// Flags as cells: one constant when they are all alike (every new version of a first
/// delivery is current), else each row's.
fn flags(values: impl Iterator<Item = bool> + Clone) -> Cells {
    let text = |flag: bool| Some(if flag { "1" } else { "0" }.to_string());
    let mut all = values.clone();
    match all.next() {
        Some(first) if all.all(|flag| flag == first) => Cells::Constant(text(first)),
        _ => Cells::Texts(values.map(text).collect()),
    }
}

/// The hash of some columns' text for one row, nulls distinct from empty text.
fn row_hash<'a>(cells: impl Iterator<Item = &'a Cells>, row: usize, buffer: &mut String) -> Hash {
    let mut hasher = Sha256::new();
    for cell in cells {
        buffer.clear();
        if cell.write(row, buffer) {
            hasher.update([1u8]);
            hasher.update((buffer.len() as u64).to_le_bytes());
            hasher.update(buffer.as_bytes());
        } else {
            hasher.update([0u8]);
        }
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    Hash::from_be_bytes(first)
}

/// The instant a date (its midnight UTC) or timestamp cell names, in microseconds since the
/// epoch; `None` for a null, another type, or an instant chrono cannot hold.
fn effective_micros(cells: &Cells, row: usize) -> Option<i64> {
    match cells {
        Cells::Arrow(column @ TextColumn::Date(_)) => column
            .date(row)
            .and_then(|date| date.and_hms_opt(0, 0, 0))
            .map(|midnight| midnight.and_utc().timestamp_micros()),
        Cells::Arrow(TextColumn::Timestamp(array)) if !array.is_null(row) => {
            let micros = array.value(row);
            chrono::DateTime::from_timestamp_micros(micros).map(|_| micros)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, StringArray};

    use super::*;

    /// The text of column `index` of every batch `producer` makes.
    fn column_texts(mut producer: PlannedRows, index: usize) -> Vec<String> {
        let mut texts = Vec::new();
        while let Some(batch) = producer.next_batch() {
            let batch = batch.expect("a batch");
            texts.extend((0..batch.rows).map(|row| batch.columns[index].text(row).unwrap_or_default()));
        }
        texts
    }

    #[test]
    fn planned_rows_read_from_the_files_again_are_those_kept_from_the_first_pass() {
        let path = std::env::temp_dir().join(format!("lakestar-planned-rows-{}.parquet", std::process::id()));
        let ids: ArrayRef = Arc::new(StringArray::from(vec!["c", "a", "e", "b", "d"]));
        let batch = RecordBatch::try_from_iter([("id", ids)]).expect("a batch");
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(File::create(&path).expect("a file"), batch.schema(), None)
                .expect("a writer");
        writer.write(&batch).expect("written");
        writer.close().expect("closed");
        let files = vec![File::open(&path).expect("the file")];
        // New versions of rows 1, 3 and 0 (a, b, c), keyed in that order.
        let planned = |row: i64, key: i64| scd::PlanRow {
            key,
            row: Some(row),
            action: scd::Action::Insert,
            valid_from: 0,
            valid_to: None,
            is_current: true,
        };
        let rows = vec![planned(1, 1), planned(3, 2), planned(0, 3)];
        let hashes = vec![(7, 9); 5];
        for kept in [None, Some(vec![batch.clone()])] {
            let data = vec!["id".to_string()];
            let table = Layout::Table { run_id: "run".to_string() };
            let producer =
                PlannedRows::new(&files, rows.clone(), &hashes, table, data.clone(), Vec::new(), kept.clone())
                    .expect("rows");
            assert_eq!(column_texts(producer, 1), ["a", "b", "c"], "in key order, kept: {}", kept.is_some());
            let producer =
                PlannedRows::new(&files, rows.clone(), &hashes, Layout::Plan, data, Vec::new(), kept.clone())
                    .expect("rows");
            assert_eq!(column_texts(producer, PLAN_COLUMNS.len()), ["c", "a", "b"], "in file order");
        }
        std::fs::remove_file(&path).expect("removed");
    }

    #[test]
    fn a_row_hash_is_the_first_half_of_its_sha256() {
        // What every Lakestar has stored: SHA-256 over each value framed as 1, its length
        // (8 bytes, little-endian) and its bytes, or 0 for a null; the first 16 bytes
        // (computed independently with Python's hashlib), as bytes in PostgreSQL and as hex
        // in SQLite (and in PostgreSQL tables made before hashes were bytes).
        let cells = [
            Cells::Texts(vec![Some("Zoë".to_string())]),
            Cells::Texts(vec![None]),
            Cells::Texts(vec![Some(String::new())]),
        ];
        let hash = row_hash(cells.iter(), 0, &mut String::new());
        assert_eq!(scd::hash_text(hash), "e1582bcbd4782771808d3248c3517b9c");
        assert_eq!(scd::hash_value("e1582bcbd4782771808d3248c3517b9c"), Some(hash));
        let bytes = [0xe1, 0x58, 0x2b, 0xcb, 0xd4, 0x78, 0x27, 0x71, 0x80, 0x8d, 0x32, 0x48, 0xc3, 0x51, 0x7b, 0x9c];
        assert_eq!(hash.to_be_bytes(), bytes);
        assert_eq!(scd::stored_hash(&bytes), Some(hash));
    }
}
