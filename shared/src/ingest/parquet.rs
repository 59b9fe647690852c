//! Parquet landing files: spooled to a local temporary file (Parquet needs random access),
//! read batch by batch, every column cast to text.

use std::io::BufRead;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::headers::HeaderMapper;
use super::raw::{BATCH_ROWS, RawWriter, RejectWriter};
use super::{Ingested, Progress};
use crate::contract::Dataset;
use crate::{Error, Result};

/// Reads a Parquet file into raw text columns.
pub fn read(
    mut reader: Box<dyn BufRead + Send>,
    dataset: &Dataset,
    key: &str,
    raw: &mut RawWriter,
    _rejects: &mut RejectWriter,
    progress: &mut Progress,
) -> Result<Ingested> {
    let unreadable = |message: String| Error::UnreadableFile { key: key.to_string(), message };
    let mut spool =
        tempfile::tempfile().map_err(|error| unreadable(format!("cannot create a temporary file: {error}")))?;
    std::io::copy(&mut reader, &mut spool)
        .map_err(|error| unreadable(format!("{error}; the file may be truncated")))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(spool)
        .map_err(|error| unreadable(format!("not a readable Parquet file: {error}")))?
        .with_batch_size(BATCH_ROWS);
    let schema = builder.schema().clone();
    let batches = builder.build().map_err(|error| unreadable(format!("not a readable Parquet file: {error}")))?;

    let mut mapper = HeaderMapper::new(dataset);
    for field in schema.fields() {
        let index = mapper.index(field.name());
        raw.add_column(&mapper.names()[index])?;
    }
    mapper.require(key, "the Parquet schema")?;

    let mut row = 0u64;
    for batch in batches {
        let batch = batch.map_err(|error| unreadable(format!("after row {row}: {error}")))?;
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            columns.push(as_text(column).ok_or_else(|| Error::SchemaMismatch {
                key: key.to_string(),
                message: format!(
                    "column `{}` has type {} which Lakestar cannot read as text",
                    field.name(),
                    field.data_type()
                ),
            })?);
        }
        let texts: Vec<&StringArray> =
            columns.iter().filter_map(|column| column.as_any().downcast_ref::<StringArray>()).collect();
        for index in 0..batch.num_rows() {
            row += 1;
            progress.row();
            raw.push(row, texts.iter().map(|column| column.is_valid(index).then(|| column.value(index))))?;
        }
    }
    Ok(Ingested { columns: mapper.names().to_vec(), drift: mapper.drift() })
}

fn as_text(column: &ArrayRef) -> Option<ArrayRef> {
    if column.data_type() == &DataType::Utf8 {
        return Some(Arc::clone(column));
    }
    cast(column, &DataType::Utf8).ok()
}
