//! Reading a run's curated parts as a load does: batch by batch, a column as staged cells,
//! again from the start for another pass, and their rows and bytes from the footers.

use std::fs::File;

use arrow::array::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::cells::Cells;
use super::text::TextColumn;
use crate::{Error, Result};

/// Checks that each downloaded curated part (by its key) is Parquet with a readable footer
/// before the load begins: a part cut short is [`Error::CorruptObject`] naming it.
pub fn check_parts(parts: &[(String, File)]) -> Result<()> {
    for (key, file) in parts {
        let file = file.try_clone().map_err(Error::temp_io)?;
        if let Err(error) = ParquetRecordBatchReaderBuilder::try_new(file) {
            return Err(Error::corrupt_part(
                key,
                format!("not a readable curated part ({})", crate::error_chain(&error)),
            ));
        }
    }
    Ok(())
}

/// Reads the curated parts batch by batch; with `only`, just those columns.
pub(crate) fn batches(files: Vec<File>, only: Option<Vec<String>>) -> impl Iterator<Item = Result<RecordBatch>> + Send {
    files.into_iter().flat_map(move |file| {
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|builder| {
                let builder = match &only {
                    Some(names) => {
                        let mask = ProjectionMask::columns(builder.parquet_schema(), names.iter().map(String::as_str));
                        builder.with_projection(mask)
                    }
                    None => builder,
                };
                builder.with_batch_size(16_384).build()
            })
            .map_err(|error| damaged("opening", &error));
        let iterator: Box<dyn Iterator<Item = Result<RecordBatch>> + Send> = match reader {
            Ok(reader) => Box::new(reader.map(|batch| batch.map_err(|error| damaged("reading", &error)))),
            Err(error) => Box::new(std::iter::once(Err(error))),
        };
        iterator
    })
}

/// A curated part the footer check passed that fails to decode further on.
fn damaged(doing: &str, error: &dyn std::error::Error) -> Error {
    Error::corrupt_part("one of the run's curated parts", format!("{doing} it failed ({})", crate::error_chain(error)))
}

/// A curated column of the batch by its star-table name; absent (all null) when an older
/// curated file predates it.
pub(super) fn column(batch: &RecordBatch, name: &str) -> Result<Cells> {
    match batch.column_by_name(name) {
        Some(array) => Ok(Cells::Arrow(TextColumn::new(array)?)),
        None => Ok(Cells::Texts(vec![None; batch.num_rows()])),
    }
}

/// Reopens the curated parts from their start, for another pass.
pub(super) fn reopen(files: &[File]) -> Result<Vec<File>> {
    files
        .iter()
        .map(|file| {
            let mut file = file.try_clone().map_err(|error| Error::arrow("reopening a curated part", error))?;
            std::io::Seek::rewind(&mut file).map_err(|error| Error::arrow("rewinding a curated part", error))?;
            Ok(file)
        })
        .collect()
}

/// The rows of the curated parts, from their footers.
pub(super) fn row_count(files: &[File]) -> Result<u64> {
    Ok(footprint(files)?.0)
}

/// The rows of the curated files and their uncompressed bytes, from their footers.
pub(super) fn footprint(files: &[File]) -> Result<(u64, u64)> {
    let (mut rows, mut bytes) = (0, 0);
    for file in reopen(files)? {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|error| Error::arrow("reading a curated part's footer", error))?;
        let metadata = builder.metadata();
        rows += metadata.file_metadata().num_rows().max(0) as u64;
        bytes += metadata.row_groups().iter().map(|group| group.total_byte_size().max(0) as u64).sum::<u64>();
    }
    Ok((rows, bytes))
}
