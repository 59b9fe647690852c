//! Every schema of the lake, in one place: the lineage columns each layer carries, the raw
//! parts, the processed parts, the two quarantine files, and the curated star tables.

use std::sync::Arc;

use arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef, TimeUnit};

use crate::contract::{Dataset, PiiConfig, PiiMethod};
use crate::types::arrow_type;

/// The lineage columns appended to every raw, processed and curated part, in this order.
pub const LINEAGE: [&str; 4] = ["_source_key", "_source_line", "_run_id", "_ingested_at"];

/// The lineage fields, typed: the landing key, the source line, the run id, the run's time.
pub fn lineage_fields() -> [Field; 4] {
    [
        Field::new(LINEAGE[0], ArrowType::Utf8, false),
        Field::new(LINEAGE[1], ArrowType::Int64, false),
        Field::new(LINEAGE[2], ArrowType::Utf8, false),
        Field::new(LINEAGE[3], ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ]
}

/// The schema of a raw part: the source columns as nullable text, then lineage.
pub fn raw_schema(columns: &[String]) -> SchemaRef {
    let mut fields: Vec<Field> = columns.iter().map(|name| Field::new(name, ArrowType::Utf8, true)).collect();
    fields.extend(lineage_fields());
    Arc::new(Schema::new(fields))
}

/// The schema of `processed/` parts: the contract columns typed, then lineage.
pub fn processed_schema(dataset: &Dataset) -> SchemaRef {
    let mut fields: Vec<Field> =
        dataset.columns.iter().map(|column| Field::new(&column.name, arrow_type(column.data_type), true)).collect();
    fields.extend(lineage_fields());
    Arc::new(Schema::new(fields))
}

/// The columns of ingest's parse rejects (`ingest_rejected.{parquet,csv}`).
pub const PARSE_REJECT_COLUMNS: [&str; 5] = ["_source_line", "_reasons", "_raw", "_source_key", "_run_id"];

/// The schema of `ingest_rejected.parquet`: where the row was, why, its text, and lineage.
pub fn parse_reject_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(PARSE_REJECT_COLUMNS[0], ArrowType::Int64, false),
        Field::new(PARSE_REJECT_COLUMNS[1], ArrowType::Utf8, false),
        Field::new(PARSE_REJECT_COLUMNS[2], ArrowType::Utf8, false),
        Field::new(PARSE_REJECT_COLUMNS[3], ArrowType::Utf8, false),
        Field::new(PARSE_REJECT_COLUMNS[4], ArrowType::Utf8, false),
    ]))
}

/// The schema of `rejected.parquet`: every source column as received, then `_reasons`,
/// `_source_line`, `_source_key` and `_run_id`.
pub fn reject_schema(columns: &[String]) -> SchemaRef {
    let mut fields: Vec<Field> = columns.iter().map(|name| Field::new(name, ArrowType::Utf8, true)).collect();
    fields.push(Field::new("_reasons", ArrowType::Utf8, false));
    fields.push(Field::new("_source_line", ArrowType::Int64, false));
    fields.push(Field::new("_source_key", ArrowType::Utf8, false));
    fields.push(Field::new("_run_id", ArrowType::Utf8, false));
    Arc::new(Schema::new(fields))
}

/// The type a masking method leaves a column with: text, a year's integer, or (redacted)
/// the column's own type, all null.
pub fn masked_type(pii: &PiiConfig, original: &ArrowType) -> ArrowType {
    match (pii.method, pii.to.as_deref()) {
        (PiiMethod::Generalize, Some("year")) => ArrowType::Int64,
        (PiiMethod::Redact, _) => original.clone(),
        _ => ArrowType::Utf8,
    }
}

/// The curated table's contract columns: their star-table names and their types once masked
/// (the curated schema is these, then [`lineage_fields`]).
pub fn curated_fields(dataset: &Dataset) -> Vec<Field> {
    dataset
        .columns
        .iter()
        .map(|column| {
            let original = arrow_type(column.data_type);
            let data_type = match &column.config.pii {
                Some(pii) => masked_type(pii, &original),
                None => original,
            };
            Field::new(column.target_name(), data_type, true)
        })
        .collect()
}
