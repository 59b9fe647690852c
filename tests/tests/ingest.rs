//! The ingest stage through its Lambda handler, against the embedded S3: files in, raw
//! Parquet and quarantine out, read back with the Parquet reader.

mod common;

use std::io::Write;

use common::*;
use lakestar::contract::Contract;
use lakestar::ingest::IngestOutput;
use lakestar_ingest::IngestFunction;

async fn ingest(
    lake: &TestLake,
    contract: Contract,
    dataset: &str,
    key: &str,
    bytes: &[u8],
) -> Result<IngestOutput, lambda_runtime::Diagnostic> {
    lake.put(key, bytes).await;
    let run = run_for(dataset, key, bytes.len());
    IngestFunction::new(lake.lake.clone(), contract).handle(state_event(&run)).await
}

/// A one-dataset contract with the given extra dataset settings and columns.
fn contract(settings: &str, columns: &[(&str, &str)]) -> Contract {
    let mut text = format!(
        "[datasets.items]\nmatch = [\"landing/**\"]\n{settings}\n[datasets.items.table]\nname = \"dim_item\"\nkind = \"dimension\"\nnatural_key = [\"{}\"]\n",
        columns[0].0
    );
    for (name, extra) in columns {
        text.push_str(&format!("[[datasets.items.columns]]\nname = \"{name}\"\n{extra}\n"));
    }
    Contract::parse("test.toml", &text).unwrap_or_else(|error| panic!("{error}"))
}

fn items() -> Contract {
    contract("", &[("id", "required = true"), ("name", "aliases = [\"Item Name\"]")])
}

async fn raw_batches(lake: &TestLake, output: &IngestOutput) -> Vec<arrow::array::RecordBatch> {
    let mut batches = Vec::new();
    for key in &output.raw {
        batches.extend(read_parquet(lake.get(key).await));
    }
    batches
}

#[tokio::test]
async fn customers_csv_becomes_raw_parquet_with_lineage_and_parse_rejects() {
    let lake = TestLake::start().await;
    let bytes = example_file("2024-01-01/customers.csv");
    let key = "landing/2024-01-01/customers.csv";
    let output = ingest(&lake, retail_contract(), "customers", key, &bytes).await.expect("ingest succeeds");

    assert_eq!((output.rows, output.raw_rows, output.rejected), (12, 11, 1));
    assert_eq!(output.format, "csv");
    assert!(!output.gzip);
    let run = run_for("customers", key, bytes.len());
    assert_eq!(output.raw, vec![format!("raw/customers/ingest_date=2024-01-02/run={}/part-00000.parquet", run.id)]);
    assert_eq!(output.columns[..4], ["customer_id", "first_name", "last_name", "email"]);
    assert_eq!(output.columns[5], "date_of_birth", "`dob` is an alias");
    assert!(output.drift.added.is_empty() && output.drift.missing.is_empty(), "{:?}", output.drift);

    let batches = raw_batches(&lake, &output).await;
    let names = column_names(&batches);
    assert_eq!(names[names.len() - 4..], ["_source_key", "_source_line", "_run_id", "_ingested_at"]);
    let last_names = text_column(&batches, "last_name");
    assert_eq!(last_names[4].as_deref(), Some("Smith, Jr"), "a quoted delimiter stays in its field");
    assert_eq!(last_names[2].as_deref(), Some("O'Brien"));
    let lines = int_column(&batches, "_source_line");
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13], "line 9 was quarantined");
    assert_eq!(text_column(&batches, "customer_id")[9].as_deref(), Some(""), "an empty field stays empty text in raw");
    assert!(text_column(&batches, "_source_key").iter().all(|value| value.as_deref() == Some(key)));
    assert!(text_column(&batches, "_run_id").iter().all(|value| value.as_deref() == Some(run.id.as_str())));

    // Source text carries no statistics (they would prune nothing); lineage keeps them.
    let raw = parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(lake.get(&output.raw[0]).await))
        .expect("a Parquet file");
    let footer = parquet::file::reader::FileReader::metadata(&raw);
    let with_statistics: Vec<String> = footer
        .row_group(0)
        .columns()
        .iter()
        .filter(|column| column.statistics().is_some())
        .map(|column| column.column_path().string())
        .collect();
    assert_eq!(with_statistics, ["_source_key", "_source_line", "_run_id", "_ingested_at"]);

    // The quarantined row, with reason and text, in Parquet and CSV.
    assert_eq!(output.quarantine.len(), 2);
    let rejects = read_parquet(lake.get(&output.quarantine[0]).await);
    assert_eq!(int_column(&rejects, "_source_line"), vec![9]);
    assert_eq!(text_column(&rejects, "_reasons"), vec![Some("parse:field_count(expected 11, got 10)".to_string())]);
    assert!(text_column(&rejects, "_raw")[0].as_deref().is_some_and(|raw| raw.starts_with("C1008,Leo,Evans")));
    let csv = String::from_utf8(lake.get(&output.quarantine[1]).await).expect("UTF-8");
    assert!(
        csv.starts_with(
            "_source_line,_reasons,_raw,_source_key,_run_id\n9,\"parse:field_count(expected 11, got 10)\",\"C1008,Leo"
        ),
        "{csv}"
    );

    // `.ci/run` reads these copies with pyarrow: proof that other tools read our Parquet.
    if let Some(dir) = std::env::var_os("LAKESTAR_TEST_EXPORT") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("export folder");
        std::fs::write(dir.join("raw_customers.parquet"), lake.get(&output.raw[0]).await).expect("export raw");
        std::fs::write(dir.join("ingest_rejected_customers.parquet"), lake.get(&output.quarantine[0]).await)
            .expect("export");
    }

    // The original bytes, archived untouched.
    assert_eq!(output.archive, format!("archive/customers/ingest_date=2024-01-02/run={}/customers.csv", run.id));
    assert_eq!(lake.get(&output.archive).await, bytes);
}

#[tokio::test]
async fn gzip_is_detected_by_its_magic_bytes() {
    let lake = TestLake::start().await;
    let output = ingest(
        &lake,
        retail_contract(),
        "sales",
        "landing/2024-01-02/sales.csv.gz",
        &example_file("2024-01-02/sales.csv.gz"),
    )
    .await
    .expect("ingest succeeds");
    assert!(output.gzip);
    assert_eq!((output.rows, output.raw_rows, output.rejected), (7, 6, 1));
    let batches = raw_batches(&lake, &output).await;
    assert_eq!(text_column(&batches, "order_id")[0].as_deref(), Some("O00010"));
    assert_eq!(
        text_column(&batches, "quantity")[5].as_deref(),
        Some("abc"),
        "raw keeps bad values for validate to judge"
    );

    // Also a gzip file whose name does not say so.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(b"id,name\n1,a\n2,b\n").expect("gzip");
    let output = ingest(&lake, items(), "items", "landing/items.csv", &encoder.finish().expect("gzip"))
        .await
        .expect("ingest succeeds");
    assert!(output.gzip);
    assert_eq!(output.raw_rows, 2);
}

#[tokio::test]
async fn semicolons_crlf_quoted_newlines_and_header_aliases() {
    let lake = TestLake::start().await;
    let output = ingest(
        &lake,
        retail_contract(),
        "products",
        "landing/2024-01-02/products_shop.csv",
        &example_file("2024-01-02/products_shop.csv"),
    )
    .await
    .expect("ingest succeeds");
    assert_eq!((output.rows, output.rejected), (5, 0));
    assert_eq!(output.columns, ["product_id", "product_name", "category", "unit_price", "supplier"]);
    assert_eq!(output.drift.added, ["supplier"]);
    let batches = raw_batches(&lake, &output).await;
    let names = text_column(&batches, "product_name");
    assert_eq!(names[0].as_deref(), Some("Espresso Beans; dark roast"));
    assert_eq!(names[4].as_deref(), Some("Long\r\nName Candle"), "a quoted newline stays in the field");
    assert_eq!(text_column(&batches, "unit_price")[0].as_deref(), Some("8.50"), "no CR left on the last field");
    assert_eq!(int_column(&batches, "_source_line"), vec![2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn nested_json_is_flattened_and_non_objects_quarantined() {
    let lake = TestLake::start().await;
    let output = ingest(
        &lake,
        retail_contract(),
        "stores",
        "landing/2024-01-01/stores.json",
        &example_file("2024-01-01/stores.json"),
    )
    .await
    .expect("ingest succeeds");
    assert_eq!(output.format, "json");
    assert_eq!((output.rows, output.raw_rows, output.rejected), (6, 5, 1));
    assert_eq!(
        output.columns,
        ["store_id", "store_name", "city", "postcode", "manager_email", "opened_on", "floor_area_m2", "tags"]
    );
    assert_eq!(output.drift.added, ["tags"]);
    let batches = raw_batches(&lake, &output).await;
    assert_eq!(text_column(&batches, "city")[0].as_deref(), Some("Leeds"));
    assert_eq!(text_column(&batches, "city")[2], None, "JSON null is a null");
    assert_eq!(text_column(&batches, "tags")[0].as_deref(), Some(r#"["flagship","city"]"#));
    assert_eq!(text_column(&batches, "tags")[3], None, "a missing key is a null");
    assert_eq!(text_column(&batches, "floor_area_m2")[0].as_deref(), Some("850"));
    assert_eq!(text_column(&batches, "store_id")[4], None);
    assert_eq!(int_column(&batches, "_source_line"), vec![1, 2, 3, 4, 6], "element 5 is not an object");
    let rejects = read_parquet(lake.get(&output.quarantine[0]).await);
    assert_eq!(text_column(&rejects, "_reasons"), vec![Some("parse:not_an_object".to_string())]);
}

#[tokio::test]
async fn ndjson_lines_that_are_not_json_are_quarantined_and_new_keys_kept() {
    let lake = TestLake::start().await;
    let mut text = String::new();
    for index in 0..10_000 {
        text.push_str(&format!("{{\"id\": {index}, \"name\": \"item {index}\"}}\n"));
    }
    text.push_str("{\"id\": 10000, \"name\": \"late\", \"colour\": {\"main\": \"red\"}}\n\n{not json}\n");
    let output =
        ingest(&lake, items(), "items", "landing/items.ndjson", text.as_bytes()).await.expect("ingest succeeds");
    assert_eq!(output.format, "ndjson");
    assert_eq!((output.rows, output.raw_rows, output.rejected), (10_002, 10_001, 1));
    assert_eq!(output.raw.len(), 2, "a key first met after a part was written starts a new part");
    let last = read_parquet(lake.get(&output.raw[1]).await);
    assert_eq!(text_column(&last, "colour_main").last().cloned().flatten().as_deref(), Some("red"));
    let rejects = read_parquet(lake.get(&output.quarantine[0]).await);
    assert_eq!(int_column(&rejects, "_source_line"), vec![10_003]);
    assert!(text_column(&rejects, "_reasons")[0].as_deref().is_some_and(|reason| reason.starts_with("parse:json(")));
}

#[tokio::test]
async fn encodings_bom_and_invalid_bytes() {
    let lake = TestLake::start().await;
    // UTF-8 with a byte-order mark: the first header still matches.
    let output = ingest(&lake, items(), "items", "landing/bom.csv", b"\xEF\xBB\xBFid,Item Name\n1,caf\xC3\xA9\n")
        .await
        .expect("ingest succeeds");
    assert_eq!(output.columns, ["id", "name"]);
    assert_eq!(text_column(&raw_batches(&lake, &output).await, "name"), vec![Some("café".to_string())]);

    // Invalid UTF-8 in one row quarantines that row only.
    let output = ingest(&lake, items(), "items", "landing/bad.csv", b"id,name\n1,ok\n2,caf\xE9\n3,fine\n")
        .await
        .expect("ingest succeeds");
    assert_eq!((output.raw_rows, output.rejected), (2, 1));
    let rejects = read_parquet(lake.get(&output.quarantine[0]).await);
    assert_eq!(text_column(&rejects, "_reasons")[0].as_deref(), Some("parse:encoding(invalid UTF-8 bytes)"));
    assert_eq!(text_column(&rejects, "_raw")[0].as_deref(), Some("2,caf\u{FFFD}"));

    // A declared windows-1252 file is decoded.
    let latin = contract("encoding = \"windows-1252\"", &[("id", ""), ("name", "")]);
    let output = ingest(&lake, latin, "items", "landing/latin.csv", b"id;name\r\n1;caf\xE9 \x80\r\n")
        .await
        .expect("ingest succeeds");
    assert_eq!(text_column(&raw_batches(&lake, &output).await, "name"), vec![Some("café €".to_string())]);
}

#[tokio::test]
async fn duplicate_blank_and_case_variant_headers_get_distinct_names() {
    let lake = TestLake::start().await;
    let output = ingest(&lake, items(), "items", "landing/h.csv", b"ID,name,Name ,,Extra Col\n1,a,b,c,d\n")
        .await
        .expect("ingest succeeds");
    assert_eq!(output.columns, ["id", "name", "name_2", "column_4", "extra_col"]);
    assert_eq!(output.drift.added, ["name_2", "column_4", "extra_col"]);
}

#[tokio::test]
async fn a_missing_required_column_fails_with_schema_mismatch() {
    let lake = TestLake::start().await;
    let error =
        ingest(&lake, items(), "items", "landing/x.csv", b"name,other\na,b\n").await.expect_err("the run fails");
    assert_eq!(error.error_type, "SchemaMismatch");
    assert!(
        error.error_message.contains("landing/x.csv") && error.error_message.contains("required column(s) id"),
        "{}",
        error.error_message
    );
}

#[tokio::test]
async fn empty_and_header_only_files_are_successful_runs_with_no_rows() {
    let lake = TestLake::start().await;
    for (key, bytes) in [
        ("landing/empty.csv", &b""[..]),
        ("landing/header.csv", b"id,name\r\n"),
        ("landing/empty.json", b"[]"),
        ("landing/blank.ndjson", b"\n\n"),
    ] {
        let output = ingest(&lake, items(), "items", key, bytes)
            .await
            .unwrap_or_else(|error| panic!("{key}: {}", error.error_message));
        assert_eq!((output.rows, output.raw.len(), output.quarantine.len()), (0, 0, 0), "{key}");
    }
}

#[tokio::test]
async fn a_dataset_missing_from_the_contract_fails_with_unknown_dataset() {
    let lake = TestLake::start().await;
    let error = ingest(&lake, items(), "invoices", "landing/invoices.csv", b"a\n1\n").await.expect_err("the run fails");
    assert_eq!(error.error_type, "UnknownDataset");
    assert!(error.error_message.contains("landing/invoices.csv"));
}

#[tokio::test]
async fn truncated_gzip_fails_naming_the_file() {
    let lake = TestLake::start().await;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for index in 0..20_000 {
        writeln!(encoder, "{index},name {index}").expect("gzip");
    }
    let mut bytes = b"".to_vec();
    bytes.extend(encoder.finish().expect("gzip"));
    bytes.truncate(bytes.len() / 2);
    let mut file = b"id,name\n".to_vec();
    let mut header = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    header.write_all(&file).expect("gzip");
    file = header.finish().expect("gzip");
    file.extend(bytes);
    let error = ingest(&lake, items(), "items", "landing/cut.csv.gz", &file).await.expect_err("the run fails");
    assert_eq!(error.error_type, "UnreadableFile");
    assert!(
        error.error_message.contains("landing/cut.csv.gz") && error.error_message.contains("truncated"),
        "{}",
        error.error_message
    );
}

#[tokio::test]
async fn a_parquet_file_is_read_whatever_its_name() {
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;
    let lake = TestLake::start().await;
    let batch = arrow::array::RecordBatch::try_from_iter([
        ("ID", Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])) as arrow::array::ArrayRef),
        ("Item Name", Arc::new(StringArray::from(vec!["a", "b", "c"]))),
    ])
    .expect("batch");
    let mut bytes = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    let output = ingest(&lake, items(), "items", "landing/claims-to-be.csv", &bytes).await.expect("ingest succeeds");
    assert_eq!(output.format, "parquet");
    let batches = raw_batches(&lake, &output).await;
    assert_eq!(text_column(&batches, "id"), vec![Some("1".to_string()), None, Some("3".to_string())]);
    assert_eq!(text_column(&batches, "name")[2].as_deref(), Some("c"));
}

#[tokio::test]
async fn running_twice_gives_the_same_keys_and_bytes_and_removes_stale_parts() {
    let lake = TestLake::start().await;
    let bytes = example_file("2024-01-01/customers.csv");
    let key = "landing/2024-01-01/customers.csv";
    let first = ingest(&lake, retail_contract(), "customers", key, &bytes).await.expect("first run");
    let mut snapshot = Vec::new();
    for key in first.raw.iter().chain(&first.quarantine) {
        snapshot.push(lake.get(key).await);
    }
    // A part an earlier, different attempt left behind.
    let stale = first.raw[0].replace("part-00000", "part-00007");
    lake.put(&stale, b"stale").await;

    let second = ingest(&lake, retail_contract(), "customers", key, &bytes).await.expect("second run");
    // The same output but for how long it took.
    assert_eq!(IngestOutput { duration_ms: 0, ..first.clone() }, IngestOutput { duration_ms: 0, ..second.clone() });
    for (key, before) in second.raw.iter().chain(&second.quarantine).zip(snapshot) {
        assert_eq!(lake.get(key).await, before, "{key} is byte-identical");
    }
    assert!(!lake.keys().await.contains(&stale), "the stale part is gone");
}

#[tokio::test]
async fn keys_with_spaces_plus_and_non_ascii_are_read_and_archived() {
    let lake = TestLake::start().await;
    let key = "landing/deliveries 2024/items+extra é.csv";
    let output = ingest(&lake, items(), "items", key, b"id,name\n1,a\n").await.expect("ingest succeeds");
    assert_eq!(output.raw_rows, 1);
    assert!(output.archive.ends_with("/items+extra é.csv"), "{}", output.archive);
    assert_eq!(lake.get(&output.archive).await, b"id,name\n1,a\n");
}

#[tokio::test]
async fn a_large_file_streams_through_multipart_uploads() {
    let lake = TestLake::start().await;
    // ~24 MB of poorly compressible text: several raw row groups and upload parts.
    let mut text = String::from("id,name\n");
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for index in 0..300_000u64 {
        let mut noise = String::with_capacity(64);
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            noise.push_str(&format!("{state:016x}"));
        }
        text.push_str(&format!("{index},{noise}\n"));
    }
    let output = ingest(&lake, items(), "items", "landing/big.csv", text.as_bytes()).await.expect("ingest succeeds");
    assert_eq!(output.raw_rows, 300_000);
    let bytes = lake.get(&output.raw[0]).await;
    assert!(bytes.len() > lakestar::lake::PART_SIZE, "the raw part ({} bytes) needed a multipart upload", bytes.len());
    let batches = read_parquet(bytes);
    let ids = text_column(&batches, "id");
    assert_eq!(ids.len(), 300_000);
    assert_eq!(ids[299_999].as_deref(), Some("299999"));
}

#[tokio::test]
async fn the_sample_event_in_events_ingests_the_example_file() {
    let lake = TestLake::start().await;
    let payload: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/ingest.json")).expect("event"),
    )
    .expect("JSON");
    let key = payload["run"]["key"].as_str().expect("a key").to_string();
    lake.put(&key, &example_file("2024-01-01/customers.csv")).await;
    let event = lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default());
    let output =
        IngestFunction::new(lake.lake.clone(), retail_contract()).handle(event).await.expect("ingest succeeds");
    assert_eq!((output.rows, output.raw_rows, output.rejected), (12, 11, 1));
    assert!(output.raw[0].starts_with("raw/customers/ingest_date=2024-01-01/run=customers-32a0d10618ef59bf7a38/"));
}

#[tokio::test]
async fn a_state_document_without_a_run_is_rejected_with_invalid_input() {
    let lake = TestLake::start().await;
    let event = lambda_runtime::LambdaEvent::new(serde_json::json!({"key": "x"}), lambda_runtime::Context::default());
    let error = IngestFunction::new(lake.lake.clone(), retail_contract()).handle(event).await.expect_err("rejected");
    assert_eq!(error.error_type, "InvalidInput");
    assert!(error.error_message.contains("run"), "{}", error.error_message);
}
