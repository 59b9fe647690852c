//! Validate's quarantine: every rejected row as received, with all its reasons, streamed to
//! `quarantine/<dataset>/run=<run>/rejected.{parquet,csv}`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, StringBuilder};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType as ArrowType, SchemaRef};
use tokio::runtime::Handle;

use super::Reasons;
use crate::lake::{self, Lake, MultipartWriter};
use crate::run::RunDescriptor;
use crate::{Error, Result};

/// Streams rejected rows, as received, to `quarantine/<dataset>/run=<run>/rejected.{parquet,csv}`.
pub(super) struct QuarantineWriter {
    lake: Lake,
    run: RunDescriptor,
    handle: Handle,
    columns: Vec<String>,
    schema: SchemaRef,
    parquet: Option<crate::lake::ParquetObjectWriter>,
    csv: Option<csv::Writer<MultipartWriter>>,
}

impl QuarantineWriter {
    pub(super) fn new(lake: &Lake, run: &RunDescriptor, columns: &[String], handle: Handle) -> QuarantineWriter {
        QuarantineWriter {
            lake: lake.clone(),
            run: run.clone(),
            handle,
            columns: columns.to_vec(),
            schema: lake::schema::reject_schema(columns),
            parquet: None,
            csv: None,
        }
    }

    fn keys(&self) -> (String, String) {
        let [parquet, csv] = lake::reject_keys(&self.run);
        (parquet, csv)
    }

    pub(super) fn write(&mut self, batch: &RecordBatch, reasons: &Reasons) -> Result<()> {
        let rejected: BooleanArray = (0..batch.num_rows()).map(|row| Some(!reasons.is_valid(row))).collect();
        let rows = batch.num_rows();
        let mut reason_texts = StringBuilder::new();
        for row in 0..rows {
            reason_texts.append_value(reasons.get(row));
        }
        let mut arrays: Vec<ArrayRef> = self
            .columns
            .iter()
            .map(|name| {
                batch
                    .column_by_name(name)
                    .cloned()
                    .unwrap_or_else(|| arrow::array::new_null_array(&ArrowType::Utf8, rows))
            })
            .collect();
        arrays.push(Arc::new(reason_texts.finish()));
        for name in ["_source_line", "_source_key", "_run_id"] {
            arrays.push(
                batch
                    .column_by_name(name)
                    .cloned()
                    .unwrap_or_else(|| arrow::array::new_null_array(&ArrowType::Utf8, rows)),
            );
        }
        let all = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|error| Error::arrow("building quarantine rows", error))?;
        let batch =
            filter_record_batch(&all, &rejected).map_err(|error| Error::arrow("filtering rejected rows", error))?;

        let (parquet_key, csv_key) = self.keys();
        if self.parquet.is_none() {
            self.parquet = Some(crate::lake::ParquetObjectWriter::new(
                &self.lake,
                &parquet_key,
                self.schema.clone(),
                self.handle.clone(),
            )?);
            let mut writer =
                csv::Writer::from_writer(MultipartWriter::new(&self.lake, &csv_key, "text/csv", self.handle.clone()));
            let mut header: Vec<&str> = self.columns.iter().map(String::as_str).collect();
            header.extend(["_reasons", "_source_line"]);
            writer.write_record(&header).map_err(|error| Error::arrow(format!("writing {csv_key}"), error))?;
            self.csv = Some(writer);
        }
        if let Some(parquet) = &mut self.parquet {
            parquet.write(&batch)?;
        }
        if let Some(csv) = &mut self.csv {
            let texts: Vec<&StringArray> = (0..=self.columns.len())
                .filter_map(|index| batch.column(index).as_any().downcast_ref::<StringArray>())
                .collect();
            let lines = batch.column(self.columns.len() + 1).as_any().downcast_ref::<Int64Array>();
            let mut record: Vec<String> = Vec::with_capacity(texts.len() + 1);
            for row in 0..batch.num_rows() {
                record.clear();
                record.extend(
                    texts
                        .iter()
                        .map(|array| if array.is_valid(row) { array.value(row).to_string() } else { String::new() }),
                );
                record.push(lines.map(|lines| lines.value(row).to_string()).unwrap_or_default());
                csv.write_record(&record).map_err(|error| Error::arrow(format!("writing {csv_key}"), error))?;
            }
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<Vec<String>> {
        let (parquet_key, csv_key) = self.keys();
        let mut keys = Vec::new();
        if let Some(parquet) = self.parquet.take() {
            parquet.finish()?;
            keys.push(parquet_key);
        }
        if let Some(csv) = self.csv.take() {
            let sink =
                csv.into_inner().map_err(|error| Error::arrow(format!("writing {csv_key}"), error.into_error()))?;
            sink.finish()?;
            keys.push(csv_key);
        }
        Ok(keys)
    }
}
