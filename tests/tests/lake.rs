//! The lake's Parquet writer, which encodes and uploads on a thread of its own, against the
//! embedded S3: the object reads back in order, a writer dropped before `finish` leaves no
//! object, and an upload that fails surfaces as an error naming the key.

mod common;

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use common::*;
use lakestar::lake::{Lake, ParquetObjectWriter, WriteBudget};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false), Field::new("text", DataType::Utf8, false)]))
}

/// `rows` rows numbered from `start`, with text that compresses poorly (so that a few
/// batches fill a multipart part).
fn batch(start: i64, rows: i64) -> RecordBatch {
    let mut state = start as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let text: Vec<String> = (0..rows)
        .map(|_| {
            (0..4)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    format!("{state:016x}")
                })
                .collect()
        })
        .collect();
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(Int64Array::from_iter_values(start..start + rows)), Arc::new(StringArray::from(text))],
    )
    .expect("batch")
}

/// Writes `batches` batches of 20 000 rows to `key` on a blocking thread; finishes or drops.
async fn write(lake: &Lake, key: &str, batches: i64, finish: bool) -> lakestar::Result<u64> {
    let (lake, key) = (lake.clone(), key.to_string());
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut writer = ParquetObjectWriter::with_budget(&lake, &key, schema(), handle, WriteBudget::SHARED)?;
        for index in 0..batches {
            writer.write(&batch(index * 20_000, 20_000))?;
        }
        if finish { writer.finish() } else { Ok(0) }
    })
    .await
    .expect("the writing task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_written_on_its_own_thread_reads_back_whole_and_in_order() {
    let lake = TestLake::start().await;
    // About 14 MB of text: several multipart parts of the shared budget's 5 MiB.
    let bytes = write(&lake.lake, "curated/t/part-00000.parquet", 20, true).await.expect("written");
    let object = lake.get("curated/t/part-00000.parquet").await;
    assert_eq!(object.len() as u64, bytes);
    assert!(bytes > 2 * 5 * 1024 * 1024, "the test must span several parts: {bytes} bytes");
    let numbers = int_column(&read_parquet(object), "n");
    assert_eq!(numbers, (0..400_000).collect::<Vec<i64>>(), "every row, in the order written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_dropped_before_finish_leaves_no_object() {
    let lake = TestLake::start().await;
    write(&lake.lake, "curated/t/part-00000.parquet", 20, false).await.expect("written");
    assert!(lake.keys().await.is_empty(), "{:?}", lake.keys().await);
    assert_eq!(upload_files(lake.s3.root()), Vec::<String>::new(), "the multipart upload was aborted");
}

/// The embedded store's files of unfinished multipart uploads (s3s-fs keeps an upload's
/// record, parts and metadata as `.upload…` files in its root).
fn upload_files(root: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(root)
        .expect("the store")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".upload"))
        .collect()
}

/// Issue 32.7: an upload its process never finished nor aborted (killed mid-write) is removed
/// when the store starts again, as the bucket's lifecycle rule removes it in AWS; finished
/// objects stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_a_killed_process_left_is_removed_when_the_store_starts_again() {
    let lake = TestLake::start().await;
    lake.put("raw/kept.csv", b"a,b\n").await;
    let client = lake.s3.client();
    let upload = client.create_multipart_upload().bucket(BUCKET).key("raw/big.parquet").send().await.expect("created");
    let id = upload.upload_id().expect("an upload id").to_string();
    let body = aws_sdk_s3::primitives::ByteStream::from(vec![7u8; 5 * 1024 * 1024]);
    client
        .upload_part()
        .bucket(BUCKET)
        .key("raw/big.parquet")
        .upload_id(&id)
        .part_number(1)
        .body(body)
        .send()
        .await
        .expect("a part");
    let left = upload_files(lake.s3.root());
    assert!(left.len() >= 2, "the store keeps the upload's record and part: {left:?}");

    let TestLake { s3, dir, .. } = lake;
    let root = s3.root().to_path_buf();
    drop(s3);
    let s3 = lakestar::lake::EmbeddedS3::start(&root).await.expect("started again");
    assert_eq!(upload_files(&root), Vec::<String>::new());
    let lake = Lake::new(s3.client(), BUCKET);
    assert_eq!(lake.list("").await.expect("listed"), ["raw/kept.csv"]);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_fails_is_an_error_naming_the_key() {
    // Nothing listens on port 9: every request fails (after the SDK's retries).
    let missing = Lake::new(lakestar::lake::EmbeddedS3::client_for("http://127.0.0.1:9"), BUCKET);
    // Small: the failure comes at `finish`, when the one request is sent.
    let error = write(&missing, "curated/t/small.parquet", 1, true).await.expect_err("no bucket");
    assert!(error.to_string().contains("curated/t/small.parquet"), "{error}");
    // Large: a part upload fails mid-stream; a later `write` or `finish` reports it.
    let error = write(&missing, "curated/t/large.parquet", 20, true).await.expect_err("no bucket");
    assert!(error.to_string().contains("curated/t/large.parquet"), "{error}");
}
