//! A contract drafted from sample files. Each file is read by the ingest stage itself (in a
//! scratch lake, under a placeholder dataset that declares nothing), so the draft sees the
//! columns exactly as a run will: flattened JSON, decoded text, sniffed CSV dialects. Its
//! guesses are checked with the casts validate uses, and each comes with a comment saying
//! what it rests on.

mod guess;
mod toml_text;

use std::collections::BTreeMap;

use arrow::array::{Array, StringArray};

use crate::contract::{Contract, normalize_header, sanitize_identifier};
use crate::lake::Lake;
use crate::run::RunDescriptor;
use crate::types::DataType;
use crate::{Error, Result};

pub use guess::{ColumnGuess, PiiGuess};

/// The placeholder dataset under which samples are ingested.
const PLACEHOLDER: &str = "lakestar_sample";
const PLACEHOLDER_COLUMN: &str = "lakestar_sample_placeholder";

/// One sample file as ingest read it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Its landing key.
    pub key: String,
    /// `csv`, `json`, `ndjson` or `parquet`.
    pub format: String,
    /// Whether it was gzip-compressed.
    pub gzip: bool,
    /// The text encoding the draft should declare (`utf-8` or `windows-1252`).
    pub encoding: &'static str,
    /// The file's headers as written, in order.
    pub headers: Vec<String>,
    /// Values per header (`None` for empty), of the first `rows.len()` rows.
    pub columns: Vec<Vec<Option<String>>>,
    /// Rows read into the sample.
    pub rows_read: u64,
    /// Rows the file has (ingest read them all).
    pub rows_total: u64,
    /// Rows ingest could not parse (a field count off, broken JSON).
    pub unparsed: u64,
    /// When only the start of a long file was read: the bytes read and the file's size.
    pub cut: Option<(u64, u64)>,
    /// For CSV: the delimiter of its header line.
    pub delimiter: Option<u8>,
}

/// What a draft is asked for.
#[derive(Debug, Clone)]
pub struct DraftOptions {
    /// The dataset's name; by default from the first file's name.
    pub dataset: Option<String>,
    /// At most this many rows per file are looked at.
    pub sample_rows: usize,
}

impl Default for DraftOptions {
    fn default() -> Self {
        DraftOptions { dataset: None, sample_rows: 100_000 }
    }
}

/// The text encoding of the start of a file: UTF-8 when it decodes as such, else Windows-1252
/// (which decodes any byte, as exports from older Windows tools are written).
pub fn sniff_encoding(start: &[u8]) -> &'static str {
    match std::str::from_utf8(start) {
        Ok(_) => "utf-8",
        // A character cut by the end of the sample is not a fault of the file.
        Err(error) if error.error_len().is_none() => "utf-8",
        Err(_) => "windows-1252",
    }
}

/// The placeholder contract a sample is ingested under: every column is one the contract
/// does not declare, so ingest keeps each with the file's own header.
fn placeholder_contract(encoding: &str) -> Result<Contract> {
    let text = format!(
        "[datasets.{PLACEHOLDER}]\nmatch = [\"landing/**\"]\nencoding = \"{encoding}\"\n\
         [datasets.{PLACEHOLDER}.quality]\nmax_reject_ratio = 1.0\n\
         [datasets.{PLACEHOLDER}.table]\nname = \"dim_{PLACEHOLDER}\"\nkind = \"dimension\"\nnatural_key = [\"{PLACEHOLDER_COLUMN}\"]\n\
         [[datasets.{PLACEHOLDER}.columns]]\nname = \"{PLACEHOLDER_COLUMN}\"\n"
    );
    Contract::parse("(placeholder)", &text).map_err(|error| Error::Internal(format!("the sample contract: {error}")))
}

/// Reads the object `key` of `scratch` (size `size`, first bytes `start`) as ingest would,
/// keeping up to `sample_rows` rows.
pub async fn read_sample(scratch: &Lake, key: &str, size: u64, start: &[u8], sample_rows: usize) -> Result<Sample> {
    // Parquet carries its own encoding: its bytes say nothing of a text encoding.
    let encoding = if start.starts_with(b"PAR1") { "utf-8" } else { sniff_encoding(start) };
    let contract = placeholder_contract(encoding)?;
    let run = RunDescriptor::new(PLACEHOLDER, scratch.bucket(), key, None, None, size, chrono::Utc::now());
    let ingested = crate::ingest::ingest(scratch, &contract, &run).await?;
    let names: Vec<String> =
        ingested.columns.iter().filter(|name| name.as_str() != PLACEHOLDER_COLUMN).cloned().collect();
    let mut columns: Vec<Vec<Option<String>>> = vec![Vec::new(); names.len()];
    let mut rows_read = 0usize;
    'parts: for (part, file) in scratch.spool(&ingested.raw).await? {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|builder| builder.build())
            .map_err(|error| Error::corrupt_part(&part, error.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|error| Error::corrupt_part(&part, error.to_string()))?;
            let take = batch.num_rows().min(sample_rows - rows_read);
            for (index, name) in names.iter().enumerate() {
                let Some(array) =
                    batch.column_by_name(name).and_then(|array| array.as_any().downcast_ref::<StringArray>())
                else {
                    columns[index].extend(std::iter::repeat_n(None, take));
                    continue;
                };
                columns[index].extend((0..take).map(|row| {
                    let value = array.is_valid(row).then(|| crate::types::cast::trim(array.value(row)));
                    value.filter(|value| !value.is_empty()).map(str::to_string)
                }));
            }
            rows_read += take;
            if rows_read >= sample_rows {
                break 'parts;
            }
        }
    }
    Ok(Sample {
        key: key.to_string(),
        delimiter: (ingested.format == "csv").then(|| crate::ingest::sniff_delimiter(start, b'"')),
        format: ingested.format,
        gzip: ingested.gzip,
        encoding,
        headers: names,
        columns,
        rows_read: rows_read as u64,
        rows_total: ingested.raw_rows,
        unparsed: ingested.rejected,
        cut: None,
    })
}

/// A column of the draft: its name, the headers that feed it, and its values over all files.
#[derive(Debug)]
struct DraftColumn {
    name: String,
    spellings: Vec<String>,
    values: Vec<Option<String>>,
    /// Files that have it.
    files: usize,
}

/// Lines up the files' columns: a header matching a column already seen (as ingest compares
/// headers: without case, spaces or punctuation) joins it; otherwise the column at the same
/// position in the first file, when this file has no header for it, takes it as an alias;
/// otherwise it is a new column.
fn line_up(samples: &[Sample]) -> Vec<DraftColumn> {
    let mut columns: Vec<DraftColumn> = Vec::new();
    for (file, sample) in samples.iter().enumerate() {
        let mut taken = vec![false; columns.len()];
        let mut pending = Vec::new();
        for (position, header) in sample.headers.iter().enumerate() {
            let key = normalize_header(header);
            let known = columns.iter().position(|column| {
                column.spellings.iter().any(|spelling| normalize_header(spelling) == key)
                    || normalize_header(&column.name) == key
            });
            match known {
                Some(index) if !taken[index] => {
                    taken[index] = true;
                    join(&mut columns[index], header, &sample.columns[position], file);
                }
                _ => pending.push(position),
            }
        }
        for position in pending {
            let header = &sample.headers[position];
            let free = (file > 0 && position < taken.len() && !taken[position]).then_some(position);
            match free {
                Some(index) => {
                    taken[index] = true;
                    join(&mut columns[index], header, &sample.columns[position], file);
                }
                None => {
                    let mut name = sanitize_identifier(header);
                    if name.is_empty() {
                        name = format!("column_{}", columns.len() + 1);
                    }
                    if crate::contract::reserved_column(&name).is_some() {
                        name = format!("source_{name}");
                    }
                    while columns.iter().any(|column| column.name == name) {
                        name.push_str("_2");
                    }
                    let rows_before: usize = samples[..file].iter().map(|sample| sample.rows_read as usize).sum();
                    let mut values = vec![None; rows_before];
                    values.extend(sample.columns[position].iter().cloned());
                    columns.push(DraftColumn { name, spellings: vec![header.clone()], values, files: 1 });
                }
            }
        }
        // Columns this file does not have: empty in its rows.
        let rows = sample.rows_read as usize;
        for (index, column) in columns.iter_mut().enumerate() {
            if index < taken.len() && !taken[index] {
                column.values.extend(std::iter::repeat_n(None, rows));
            }
        }
    }
    columns
}

fn join(column: &mut DraftColumn, header: &str, values: &[Option<String>], _file: usize) {
    if !column.spellings.iter().any(|spelling| spelling == header) {
        column.spellings.push(header.to_string());
    }
    column.values.extend(values.iter().cloned());
    column.files += 1;
}

/// A drafted dataset.
#[derive(Debug)]
pub struct Draft {
    /// The dataset's name.
    pub dataset: String,
    /// Its `match` patterns.
    pub patterns: Vec<String>,
    /// The files it was drafted from.
    pub samples: Vec<Sample>,
    /// Its columns, with their guesses.
    pub columns: Vec<ColumnGuess>,
    /// `dimension` or `fact`.
    pub kind: &'static str,
    /// The natural key chosen, and why.
    pub natural_key: (Vec<String>, String),
    /// For a fact: the `date_column`; for a dimension: `effective_from` (either optional).
    pub time_column: Option<String>,
}

/// Drafts a dataset from its samples.
pub fn draft(samples: Vec<Sample>, options: &DraftOptions) -> Result<Draft> {
    let Some(first) = samples.first() else {
        return Err(Error::Configuration("infer needs at least one sample file".to_string()));
    };
    let dataset = match &options.dataset {
        Some(name) => name.clone(),
        None => dataset_name(&first.key),
    };
    if !crate::contract::is_identifier(&dataset) {
        return Err(Error::Configuration(format!(
            "`{dataset}` is not a dataset name (lower-case letters, digits and _): give --dataset NAME"
        )));
    }
    let files = samples.len();
    if samples.iter().all(|sample| sample.headers.is_empty()) {
        let keys: Vec<&str> = samples.iter().map(|sample| sample.key.as_str()).collect();
        return Err(Error::Configuration(format!(
            "{}: no columns to draft from (empty, or a header and nothing else); give files with a header and rows",
            keys.join(", ")
        )));
    }
    let lined = line_up(&samples);
    let file_rows: Vec<usize> = samples.iter().map(|sample| sample.rows_read as usize).collect();
    let columns: Vec<ColumnGuess> = lined
        .iter()
        .map(|column| {
            guess::column(column.name.clone(), column.spellings.clone(), &column.values, column.files == files)
        })
        .collect();
    // Personal data, floats and flags identify nothing.
    let eligible: Vec<bool> = columns
        .iter()
        .map(|column| column.pii.is_none() && !matches!(column.data_type, DataType::Float | DataType::Boolean))
        .collect();
    let natural_key = natural_key(&lined, &eligible, &file_rows);
    let mut columns = columns;
    for column in columns.iter_mut().filter(|column| natural_key.0.contains(&column.name)) {
        column.required = true;
    }
    let (kind, time_column) = kind(&columns, &natural_key.0);
    Ok(Draft { patterns: patterns(&samples), dataset, samples, columns, kind, natural_key, time_column })
}

/// Whether a column's name says it identifies something (`customer_id`, `sku`, `order_no`).
fn id_like(name: &str) -> bool {
    name == "id"
        || ["_id", "id", "_key", "_code", "_no", "_number", "_ref"].iter().any(|end| name.ends_with(end))
        || ["sku", "code", "ean", "isbn", "uuid", "guid"].contains(&name)
}

/// How many rows of the sample a key of these columns would quarantine: those with an empty
/// key column, and those repeating an earlier row's key within their file.
fn defects(columns: &[&DraftColumn], file_rows: &[usize]) -> usize {
    let mut start = 0;
    let mut defects = 0;
    for &rows in file_rows {
        let mut seen = std::collections::HashSet::with_capacity(rows);
        for row in start..start + rows {
            let key: Option<Vec<&str>> =
                columns.iter().map(|column| column.values.get(row).and_then(Option::as_deref)).collect();
            if !key.is_some_and(|key| seen.insert(key)) {
                defects += 1;
            }
        }
        start += rows;
    }
    defects
}

/// The natural key and why. Single columns named like ids first, then other single columns,
/// then pairs of the first twelve; each first with no row that the key would quarantine
/// (empty, or repeating another's key within its file), then allowing a few.
fn natural_key(columns: &[DraftColumn], eligible: &[bool], file_rows: &[usize]) -> (Vec<String>, String) {
    let rows: usize = file_rows.iter().sum();
    let tolerated = guess::tolerated(rows);
    let usable: Vec<&DraftColumn> =
        columns.iter().zip(eligible).filter(|(_, eligible)| **eligible).map(|(column, _)| column).collect();
    let ids: Vec<Vec<&DraftColumn>> =
        usable.iter().filter(|column| id_like(&column.name)).map(|column| vec![*column]).collect();
    let others: Vec<Vec<&DraftColumn>> =
        usable.iter().filter(|column| !id_like(&column.name)).map(|column| vec![*column]).collect();
    let mut ordered: Vec<&DraftColumn> = usable.iter().take(12).copied().collect();
    ordered.sort_by_key(|column| !id_like(&column.name));
    let (mut id_pairs, mut pairs): (Vec<Vec<&DraftColumn>>, Vec<Vec<&DraftColumn>>) = (Vec::new(), Vec::new());
    for (index, left) in ordered.iter().enumerate() {
        for right in &ordered[index + 1..] {
            if id_like(&left.name) { id_pairs.push(vec![left, right]) } else { pairs.push(vec![left, right]) }
        }
    }
    let passes = [
        (&ids, 0),
        (&id_pairs, 0),
        (&ids, tolerated),
        (&id_pairs, tolerated),
        (&others, 0),
        (&pairs, 0),
        (&others, tolerated),
        (&pairs, tolerated),
    ];
    if rows > 1 {
        for (candidates, allowed) in passes {
            for candidate in candidates.iter() {
                let count = defects(candidate, file_rows);
                if count <= allowed {
                    let names: Vec<String> = candidate.iter().map(|column| column.name.clone()).collect();
                    let what = if names.len() > 1 { "together (neither alone)" } else { "in the sample" };
                    let why = match count {
                        0 => format!("{what} never empty and never repeated within a file"),
                        count => {
                            format!("{what} {count} row(s) empty or repeating another's key (a run quarantines them)")
                        }
                    };
                    return (names, why);
                }
            }
        }
    }
    let name = columns.first().map(|column| column.name.clone()).unwrap_or_default();
    (vec![name], "CHECK: no column or pair identifies the rows of the sample; choose the natural key".to_string())
}

/// Dimension or fact, and its time column: a fact has a date, a measure besides its key and
/// ids of other things (or a key of several columns); the rest are dimensions, valid from a
/// column named like `updated_at` when there is one.
fn kind(columns: &[ColumnGuess], key: &[String]) -> (&'static str, Option<String>) {
    let temporal = |column: &&ColumnGuess| matches!(column.data_type, DataType::Date | DataType::Timestamp);
    let named = |column: &&ColumnGuess, words: &[&str]| words.iter().any(|word| column.name.contains(word));
    let outside_key: Vec<&ColumnGuess> = columns.iter().filter(|column| !key.contains(&column.name)).collect();
    let measures = outside_key.iter().filter(|column| column.data_type.is_numeric() && !id_like(&column.name)).count();
    let references = outside_key.iter().filter(|column| id_like(&column.name)).count();
    let date = columns
        .iter()
        .filter(temporal)
        .find(|column| named(column, &["date", "_at", "time", "day"]) && column.pii.is_none())
        .or_else(|| columns.iter().filter(temporal).find(|column| column.pii.is_none()));
    if let Some(date) = date
        && measures > 0
        && (references >= 2 || key.len() > 1)
    {
        return ("fact", Some(date.name.clone()));
    }
    let effective = columns.iter().filter(temporal).find(|column| {
        [
            "updated_at",
            "modified_at",
            "last_modified",
            "last_updated",
            "valid_from",
            "effective_from",
            "changed_at",
            "updated_on",
        ]
        .contains(&column.name.as_str())
    });
    ("dimension", effective.map(|column| column.name.clone()))
}

/// A dataset name from a key's file name: `landing/2024-01-01/Sales Export_2024.csv.gz` →
/// `sales_export`.
fn dataset_name(key: &str) -> String {
    let file = key.rsplit('/').next().unwrap_or(key);
    let stem = file.split('.').next().unwrap_or(file);
    let mut name = sanitize_identifier(stem);
    while name.ends_with(|c: char| c.is_ascii_digit() || c == '_') {
        name.pop();
    }
    if name.is_empty() { "dataset".to_string() } else { name }
}

/// `match` patterns covering the samples' keys in any delivery folder: the common start of
/// their file names, then `*`, per extension.
fn patterns(samples: &[Sample]) -> Vec<String> {
    let names: Vec<&str> = samples.iter().map(|sample| sample.key.rsplit('/').next().unwrap_or(&sample.key)).collect();
    let mut by_extension: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for name in &names {
        let (stem, extension) = match name.find('.') {
            Some(at) => (&name[..at], &name[at..]),
            None => (*name, ""),
        };
        by_extension.entry(extension.to_lowercase()).or_default().push(stem);
    }
    by_extension
        .into_iter()
        .map(|(extension, stems)| {
            let mut prefix: String = stems[0].to_string();
            for stem in &stems[1..] {
                let common = prefix.chars().zip(stem.chars()).take_while(|(a, b)| a.eq_ignore_ascii_case(b)).count();
                prefix = prefix.chars().take(common).collect();
            }
            // Dates and counters in a name differ between deliveries: stop before them.
            let cut = prefix.find(|c: char| c.is_ascii_digit()).unwrap_or(prefix.len());
            let prefix = prefix[..cut].replace(['*', '?', '[', ']', '{', '}'], "");
            format!("landing/**/{prefix}*{extension}")
        })
        .collect()
}

impl Draft {
    /// The draft as `pipeline.toml` text, every guess with its reason as a comment.
    pub fn to_toml(&self) -> String {
        toml_text::write(self)
    }
}
