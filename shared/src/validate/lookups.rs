//! What a run's rules read from the lake beyond the run itself: the rows the dataset's previous
//! run kept (`RowCountMatch "previous"`) and the keys another dataset holds
//! (`ReferentialIntegrity`).

use std::fs::File;

use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::contract::Contract;
use crate::lake::{self, Lake};
use crate::quality::{Reference, ReferenceKeys, View};
use crate::run::RunDescriptor;
use crate::{Error, Result};

/// The rows the dataset's previous run kept: the quality report of the latest run that landed
/// before this one (`RowCountMatch "previous"`); `None` when there is none.
pub(super) async fn previous_run_rows(lake: &Lake, run: &RunDescriptor) -> Result<Option<u64>> {
    let prefix = format!("curated/_quality/{}/", run.dataset);
    let own = lake::quality_key(&run.dataset, &run.id);
    let mut latest: Option<(chrono::DateTime<chrono::Utc>, String, u64)> = None;
    for key in lake.list(&prefix).await? {
        if key == own || !key.ends_with(".json") {
            continue;
        }
        let Some(bytes) = lake.get_optional(&key).await? else { continue };
        let report: serde_json::Value = serde_json::from_slice(&bytes).map_err(|error| Error::CorruptObject {
            key: key.clone(),
            message: format!("not a quality report ({error})"),
        })?;
        let landed = report.get("landed_at").and_then(|value| value.as_str()).and_then(|text| text.parse().ok());
        let (Some(landed), Some(valid)) = (landed, report.get("valid").and_then(serde_json::Value::as_u64)) else {
            continue;
        };
        let run_id = report.get("run").and_then(serde_json::Value::as_str).unwrap_or("").to_string();
        // Earlier runs only, whatever order they were loaded in.
        if (landed, run_id.as_str()) >= (run.time, run.id.as_str()) {
            continue;
        }
        if latest.as_ref().is_none_or(|(time, id, _)| (landed, run_id.as_str()) > (*time, id.as_str())) {
            latest = Some((landed, run_id, valid));
        }
    }
    Ok(latest.map(|(_, _, valid)| valid))
}

/// The keys the reference's dataset holds in its columns: every processed part of the dataset
/// (the rows its runs kept), but this run's own, so a re-drive judges as a clean run does.
/// Parts are read one at a time from local disk; the keys are held in memory.
pub(super) async fn reference_keys(
    lake: &Lake,
    contract: &Contract,
    run: &RunDescriptor,
    reference: &Reference,
) -> Result<ReferenceKeys> {
    if contract.dataset(&reference.dataset).is_none() {
        return Err(Error::Internal(format!(
            "ReferentialIntegrity names the dataset `{}`, which the contract lacks; run `lakestar check`",
            reference.dataset
        )));
    }
    let own = lake::processed_prefix(run);
    let parts: Vec<String> = lake
        .list(&format!("processed/{}/", reference.dataset))
        .await?
        .into_iter()
        .filter(|key| key.ends_with(".parquet") && !key.starts_with(&own))
        .collect();
    let mut found = ReferenceKeys::default();
    for part in &parts {
        for (key, file) in lake.spool(std::slice::from_ref(part)).await? {
            let columns = reference.columns.clone();
            found = tokio::task::spawn_blocking(move || read_keys(found, &key, file, &columns))
                .await
                .map_err(|error| Error::Internal(format!("reading reference keys stopped: {error}")))??;
        }
    }
    tracing::info!(
        run = %run.id,
        reference = %reference.dataset,
        parts = parts.len(),
        rows = found.rows,
        keys = found.keys.len(),
        "Reference keys read."
    );
    Ok(found)
}

/// Adds the complete keys of one processed part to `found`.
fn read_keys(mut found: ReferenceKeys, key: &str, file: File, columns: &[String]) -> Result<ReferenceKeys> {
    let unreadable = |error: parquet::errors::ParquetError| {
        Error::corrupt_part(key, format!("not a readable processed part ({})", crate::error_chain(&error)))
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(unreadable)?;
    if columns.iter().any(|name| builder.schema().index_of(name).is_err()) {
        // A part written before the dataset had the columns holds no complete key.
        found.rows += u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        return Ok(found);
    }
    let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().map(String::as_str));
    let reader = builder.with_projection(mask).with_batch_size(8192).build().map_err(unreadable)?;
    let mut wanted = String::new();
    for batch in reader {
        let batch =
            batch.map_err(|error| Error::corrupt_part(key, format!("not a readable processed part ({error})")))?;
        let views: Vec<View<'_>> =
            columns.iter().map(|name| batch.column_by_name(name).map_or(View::Absent, View::of)).collect();
        for position in 0..batch.num_rows() {
            wanted.clear();
            if views.iter().all(|view| ReferenceKeys::push(&mut wanted, &view.get(position))) {
                found.keys.insert(wanted.clone());
            }
        }
        found.rows += batch.num_rows() as u64;
    }
    Ok(found)
}
