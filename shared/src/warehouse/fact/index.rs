//! The dimensions a fact load looks its keys up in: their versions read once (all of a
//! dimension, or those of the natural keys the facts name), inferred members added for
//! the keys no dimension has yet, and the as-of lookup of one fact row.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;

use arrow::array::Array;

use crate::Result;
use crate::warehouse::bulk;
use crate::warehouse::cells::{Cells, Kind, StageBatch, Value};
use crate::warehouse::curated::{batches, column, reopen};
use crate::warehouse::scd::{self, INFERRED_FROM};
use crate::warehouse::sql::{highest_key, natural_text, where_staged};
use crate::warehouse::staging::CopyOptions;
use crate::warehouse::text::TextColumn;
use crate::warehouse::tx::Tx;

const NAMED: &str = "lakestar_named";

/// Hash maps keyed by natural-key text, looked up once per fact row and reference.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The versions of one dimension, by natural key, for the facts' as-of lookups: validity in
/// microseconds, so a fact row costs no text formatting or comparison.
pub(crate) struct DimensionIndex {
    pub(crate) versions: FastMap<String, Vec<(i64, Option<i64>, i64)>>,
    pub(crate) max_key: i64,
}

impl DimensionIndex {
    /// The version in effect at `as_of` (exclusive of its end), else the key's first version.
    pub(crate) fn lookup(&self, natural_key: &str, as_of: i64) -> Option<i64> {
        let versions = self.versions.get(natural_key)?;
        versions
            .iter()
            .rev()
            .find(|(from, to, _)| *from < as_of && to.is_none_or(|to| to >= as_of))
            .or(versions.first())
            .map(|(_, _, key)| *key)
    }
}

/// A dimension a fact references: its table, key, natural key, and the fact's columns.
pub(crate) struct Reference {
    pub(crate) table: String,
    pub(crate) key: String,
    pub(crate) natural_key: Vec<String>,
    /// The natural key columns with their SQL types, for staging named keys.
    pub(crate) natural_key_definitions: Vec<String>,
    pub(crate) fact_columns: Vec<String>,
    /// What a key the dimension lacks does.
    pub(crate) on_missing: crate::contract::OnMissing,
    /// The fact's columns as the contract names them, for messages.
    pub(crate) named_columns: Vec<String>,
}

/// Natural-key texts.
pub(crate) type FastSet = HashSet<String, foldhash::fast::RandomState>;

/// The distinct natural keys the facts name, per reference (nulls name none).
pub(crate) fn named_keys(files: &[File], references: &[Reference]) -> Result<Vec<FastSet>> {
    let mut named: Vec<FastSet> = references.iter().map(|_| FastSet::default()).collect();
    let columns: Vec<String> = references.iter().flat_map(|reference| reference.fact_columns.iter().cloned()).collect();
    let mut buffer = String::new();
    for batch in batches(reopen(files)?, Some(columns)) {
        let batch = batch?;
        for (reference, named) in references.iter().zip(named.iter_mut()) {
            let cells: Vec<Cells> =
                reference.fact_columns.iter().map(|name| column(&batch, name)).collect::<Result<_>>()?;
            for row in 0..batch.num_rows() {
                if let Some(natural) = reference_key(&cells, row, &mut buffer)
                    && !named.contains(natural)
                {
                    named.insert(natural.to_string());
                }
            }
        }
    }
    Ok(named)
}

/// Reads the versions of a dimension (natural key, validity, surrogate key): all of them, or
/// with `named`, those of the natural keys the facts name (staged and joined), so that a small
/// delivery against a large dimension reads a few rows instead of the table.
pub(crate) async fn dimension_index(
    tx: &mut Tx,
    reference: &Reference,
    named: Option<&FastSet>,
) -> Result<DimensionIndex> {
    let mut select: Vec<String> =
        reference.natural_key.iter().map(|column| format!("CAST(d.{column} AS TEXT)")).collect();
    let width = reference.natural_key.len();
    select.extend([format!("d.{}", reference.key), "d.\"valid_from\"".to_string(), "d.\"valid_to\"".to_string()]);
    let mut kinds = vec![Kind::Text; width];
    kinds.extend([Kind::Integer, Kind::Instant, Kind::Instant]);
    let mut statement = format!("SELECT {} FROM {} d", select.join(", "), reference.table);
    if let Some(named) = named {
        tx.create_temp(NAMED, &reference.natural_key_definitions).await?;
        let mut stager = tx.stager(NAMED, &reference.natural_key, CopyOptions::BINARY).await?;
        let keys: Vec<&String> = named.iter().collect();
        for chunk in keys.chunks(16_384) {
            let mut parts: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(chunk.len()); width];
            for (at, natural) in chunk.iter().enumerate() {
                for (column, part) in parts.iter_mut().zip(natural.splitn(width, '\u{1f}')) {
                    column.push(Some(part.to_string()));
                }
                for column in &mut parts {
                    column.resize(at + 1, None);
                }
            }
            stager
                .send(&StageBatch { columns: parts.into_iter().map(Cells::Texts).collect(), rows: chunk.len() })
                .await?;
        }
        stager.finish().await?;
        if named.len() > 10_000 {
            tx.analyze(NAMED).await?;
        }
        statement.push_str(&where_staged(NAMED, &reference.natural_key));
    }
    let mut versions: FastMap<String, Vec<(i64, Option<i64>, i64)>> = FastMap::default();
    let mut max_key = 0;
    let inferred_from = scd::INFERRED_FROM_MICROS;
    let what = format!("reading the versions of {}", reference.table);
    tx.fetch_each(&what, statement, &kinds, |mut row| {
        let key = row.get(width).and_then(Value::integer).unwrap_or_default();
        max_key = max_key.max(key);
        let from = row.get(width + 1).and_then(Value::micros).unwrap_or(inferred_from);
        let to = row.get(width + 2).and_then(Value::micros);
        row.truncate(width);
        let natural = natural_text(row.into_iter());
        versions.entry(natural).or_default().push((from, to, key));
    })
    .await?;
    if named.is_some() {
        tx.drop_temp(&[NAMED]).await?;
        max_key = max_key.max(highest_key(tx, &reference.table, &reference.key).await?);
    }
    for list in versions.values_mut() {
        list.sort();
    }
    Ok(DimensionIndex { versions, max_key })
}

/// The natural key text of a fact row's reference (parts joined by U+001F, in `buffer` unless
/// it is one text column), `None` when a part is null.
pub(crate) fn reference_key<'a>(cells: &'a [Cells], row: usize, buffer: &'a mut String) -> Option<&'a str> {
    if let [Cells::Arrow(TextColumn::Text(array))] = cells {
        return (!array.is_null(row)).then(|| array.value(row));
    }
    buffer.clear();
    for (index, cell) in cells.iter().enumerate() {
        if index > 0 {
            buffer.push('\u{1f}');
        }
        if !cell.write(row, buffer) {
            return None;
        }
    }
    Some(buffer.as_str())
}

/// Adds inferred members for `missing` natural keys (new surrogate keys in key order), and
/// records them in the index.
pub(crate) async fn add_inferred(
    tx: &mut Tx,
    reference: &Reference,
    index: &mut DimensionIndex,
    missing: BTreeSet<String>,
    run_id: &str,
) -> Result<()> {
    // Straight into the dimension (its lock is held): key, natural key, validity, flags.
    let mut columns = vec![reference.key.clone()];
    columns.extend(reference.natural_key.iter().cloned());
    columns.extend(["valid_from", "is_current", "is_inferred", "run_id"].map(|name| format!("\"{name}\"")));
    let inferred_from = scd::INFERRED_FROM_MICROS;
    let missing: Vec<String> = missing.into_iter().collect();
    // Into an empty dimension (a first fact delivery) with its keys and indexes set aside.
    let set_aside = if index.versions.is_empty() {
        bulk::set_aside(tx, &reference.table).await?
    } else {
        bulk::SetAside::default()
    };
    let mut stager = tx.stager(&reference.table, &columns, set_aside.copy_options()).await?;
    for chunk in missing.chunks(16_384) {
        let mut keys = Vec::with_capacity(chunk.len());
        let mut parts: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(chunk.len()); reference.natural_key.len()];
        for natural in chunk {
            index.max_key += 1;
            keys.push(Some(index.max_key));
            for (position, part) in natural.split('\u{1f}').enumerate() {
                if let Some(column) = parts.get_mut(position) {
                    column.push(Some(part.to_string()));
                }
            }
            index.versions.insert(natural.clone(), vec![(inferred_from, None, index.max_key)]);
        }
        let mut cells = vec![Cells::Integers(keys)];
        cells.extend(parts.into_iter().map(Cells::Texts));
        cells.extend([
            Cells::Constant(Some(INFERRED_FROM.to_string())),
            Cells::Constant(Some("1".to_string())),
            Cells::Constant(Some("1".to_string())),
            Cells::Constant(Some(run_id.to_string())),
        ]);
        stager.send(&StageBatch { columns: cells, rows: chunk.len() }).await?;
    }
    stager.finish().await?;
    set_aside.rebuild(tx).await
}
