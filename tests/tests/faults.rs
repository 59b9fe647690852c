//! Issue 32.4 and 32.7: damage a stage cannot heal is named, not retried, and says what to do:
//! a lake part cut short or damaged (on the embedded store's disk, or replaced through S3), a
//! full local disk. Failed multipart uploads leave nothing behind.

mod common;

use std::path::{Path, PathBuf};

use lakestar::mask::MaskingKey;
use lakestar_local::stack::{Stack, StackConfig, timing};
use lakestar_local::store::ExecutionRecord;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail")
}

fn config(home: &Path, fault: Option<&str>) -> StackConfig {
    let mut config = StackConfig::new(home, example().join("pipeline.toml"));
    config.key = Some(MaskingKey::new(b"faults-test-key-0123456789abcdef-0123".to_vec(), "v1").expect("key"));
    config.timing = timing(0.0);
    config.fault = fault.map(str::to_string);
    config
}

/// The first Parquet part under `prefix` of the home's lake bucket, on disk.
fn part_on_disk(home: &Path, prefix: &str) -> (String, PathBuf) {
    let bucket = home.join("s3/lakestar-lake");
    let mut pending = vec![bucket.join(prefix)];
    while let Some(folder) = pending.pop() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(&folder).expect("a folder").flatten().map(|entry| entry.path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "parquet") {
                let key = path.strip_prefix(&bucket).expect("in the bucket").to_string_lossy().replace('\\', "/");
                return (key, path);
            }
        }
    }
    panic!("no Parquet part under {prefix}");
}

/// How many times the history scheduled a task of `state`.
fn attempts(record: &ExecutionRecord, state: &str) -> usize {
    record.history.iter().filter(|event| event.kind == "TaskScheduled" && event.state.as_deref() == Some(state)).count()
}

/// A part the next stage reads, cut short on the store's disk or replaced through S3 by bytes
/// that are not Parquet: the re-driven stage fails once with `CorruptObject`, naming the part
/// and what to do, instead of being retried as an unavailable S3 or reported as a write failure.
#[tokio::test]
async fn a_damaged_part_is_a_corrupt_object_named_with_what_to_do_and_not_retried() {
    let file = example().join("landing/2024-01-01/customers.csv");
    for (stage, state, prefix) in
        [("validate", "Validate", "raw/"), ("mask", "Mask", "processed/"), ("load", "Load", "curated/")]
    {
        for through_s3 in [false, true] {
            let home = tempfile::tempdir().expect("home");
            let stack = Stack::open(config(home.path(), Some(stage))).await.expect("stack");
            stack.drop_file("landing/2024-01-01/customers.csv", &file).await.expect("dropped");
            let records = stack.run_started(|_| {}).await.expect("ran");
            assert_eq!(records[0].failed_state.as_deref(), Some(state));
            let (key, path) = part_on_disk(home.path(), prefix);
            let bytes = std::fs::read(&path).expect("the part");
            if through_s3 {
                stack
                    .lake()
                    .put_bytes(&key, bytes[..bytes.len() / 2].to_vec(), "application/octet-stream")
                    .await
                    .expect("put");
            } else {
                std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("cut short");
            }
            let before = attempts(&records[0], state);
            let record = stack.redrive(&records[0].name).await.expect("re-driven");
            let how = if through_s3 { "through S3" } else { "on disk" };
            assert_eq!(record.status, "FAILED", "{stage} {how}");
            assert_eq!(record.error.as_deref(), Some("CorruptObject"), "{stage} {how}: {:?}", record.cause);
            let cause = record.cause.clone().unwrap_or_default();
            assert!(cause.contains(&key), "{stage} {how}: names the part: {cause}");
            assert!(cause.contains("reprocess"), "{stage} {how}: says what to do: {cause}");
            assert_eq!(attempts(&record, state), before + 1, "{stage} {how}: not retried");
            if let lakestar::warehouse::Warehouse::Sqlite(pool) = stack.warehouse() {
                pool.close().await;
            }
        }
    }
}
