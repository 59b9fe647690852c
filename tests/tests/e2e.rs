//! End to end: the retail example through the offline stack — S3 events, the trigger handler,
//! the real state machine in the local interpreter, every stage's handler — into SQLite and
//! into the machine's PostgreSQL; duplicate drops; a fault injected into each stage, re-driven,
//! compared with a clean run.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{PostgresDatabase, dangling_fact_keys, flag_text, query_text, snapshot};
use lakestar::mask::MaskingKey;
use lakestar::warehouse::Warehouse;
use lakestar_local::landing::collect_drops;
use lakestar_local::stack::{Stack, StackConfig, timing};
use lakestar_local::store::ExecutionRecord;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail")
}

fn config(home: &Path, warehouse: Option<String>, fault: Option<&str>) -> StackConfig {
    let mut config = StackConfig::new(home, example().join("pipeline.toml"));
    config.warehouse = warehouse;
    config.key = Some(MaskingKey::new(b"e2e-test-key-0123456789abcdef-0123".to_vec(), "v1").expect("key"));
    config.timing = timing(0.0);
    config.fault = fault.map(str::to_string);
    config
}

/// Drops every example file and runs what the trigger started.
async fn run_example(stack: &Stack) -> Vec<ExecutionRecord> {
    for drop in collect_drops(&[example()]).expect("landing files") {
        let output = stack.drop_file(&drop.key, &drop.path).await.expect("dropped");
        assert_eq!(output.started.len(), 1, "{}: {output:?}", drop.key);
    }
    stack.run_started(|_| {}).await.expect("executions ran")
}

fn instant(warehouse: &Warehouse, column: &str) -> String {
    match warehouse {
        Warehouse::Postgres(_) => format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"),
        Warehouse::Sqlite(_) => format!("substr({column}, 1, 19) || 'Z'"),
    }
}

fn text(value: &str) -> Option<String> {
    Some(value.to_string())
}

/// Every object of the lake bucket with its bytes.
async fn lake_objects(stack: &Stack) -> BTreeMap<String, Vec<u8>> {
    let mut objects = BTreeMap::new();
    for key in stack.lake().list("").await.expect("list") {
        objects.insert(key.clone(), stack.lake().get_bytes(&key).await.expect("get"));
    }
    objects
}

/// What the example must leave behind, in either warehouse.
async fn assert_example_result(stack: &Stack, records: &[ExecutionRecord]) {
    let warehouse = stack.warehouse();
    assert_eq!(records.len(), 9);
    for record in records {
        assert_eq!(record.status, "SUCCEEDED", "{}: {:?} {:?}", record.name, record.error, record.cause);
        let (received, valid, rejected) = record.rows().expect("validate ran");
        assert_eq!(received, valid + rejected, "{}: received = valid + quarantined", record.name);
    }
    let mut quarantined: BTreeMap<&str, u64> = BTreeMap::new();
    for record in records {
        *quarantined.entry(record.dataset()).or_default() += record.rows().map_or(0, |(_, _, rejected)| rejected);
    }
    assert_eq!(quarantined, BTreeMap::from([("customers", 7), ("products", 4), ("sales", 7), ("stores", 3)]));

    // SCD2 history of the changed customers, the back-dated change and the inferred member.
    let rows = query_text(
        warehouse,
        &format!(
            "SELECT customer_id, city, segment, {}, {}, {}, {}, CAST(customer_key AS TEXT) FROM dim_customer \
             WHERE customer_id IN ('C1001', 'C1002', 'C1003', 'C1011') ORDER BY customer_id, valid_from",
            instant(warehouse, "valid_from"),
            instant(warehouse, "valid_to"),
            flag_text(warehouse, "is_current"),
            flag_text(warehouse, "is_inferred")
        ),
    )
    .await;
    let history: Vec<Vec<Option<String>>> = rows.iter().map(|row| row[..7].to_vec()).collect();
    let row = |id: &str, city: &str, segment: &str, from: &str, to: Option<&str>, current: &str| {
        vec![text(id), text(city), text(segment), text(from), to.map(str::to_string), text(current), text("0")]
    };
    assert_eq!(
        history,
        [
            row("C1001", "Leeds", "consumer", "2024-01-01T08:00:00Z", Some("2024-01-02T08:00:00Z"), "0"),
            row("C1001", "York", "consumer", "2024-01-02T08:00:00Z", None, "1"),
            row("C1002", "Manchester", "business", "2024-01-01T09:30:00Z", Some("2024-01-02T08:00:00Z"), "0"),
            row("C1002", "Manchester", "consumer", "2024-01-02T08:00:00Z", None, "1"),
            row("C1003", "Birmingham", "business", "2023-12-15T08:00:00Z", Some("2024-01-01T08:00:00Z"), "0"),
            row("C1003", "Birmingham", "consumer", "2024-01-01T08:00:00Z", None, "1"),
            row("C1011", "Oxford", "consumer", "2024-01-03T08:00:00Z", None, "1"),
        ]
    );
    // C1011's sale arrived a day before C1011 did: the inferred member the sale created was
    // completed in place, valid from the row's time as if the row had come first, and the
    // sale (dated before it) still points at it, the key's first version.
    let sale =
        query_text(warehouse, "SELECT CAST(customer_key AS TEXT) FROM fact_sales WHERE order_id = 'O00011'").await;
    assert_eq!(sale, [vec![rows[6][7].clone()]]);

    // Facts: counts, every key resolves, dim_date covers every sale date.
    assert_eq!(query_text(warehouse, "SELECT CAST(COUNT(*) AS TEXT) FROM fact_sales").await, [vec![text("11")]]);
    let dangling = dangling_fact_keys(warehouse).await;
    assert_eq!(dangling, [vec![text("0")]]);
    // P999 is sold but never delivered: an inferred member that stays flagged.
    let unknown = query_text(
        warehouse,
        &format!("SELECT {} FROM dim_product WHERE product_id = 'P999'", flag_text(warehouse, "is_inferred")),
    )
    .await;
    assert_eq!(unknown, [vec![text("1")]]);

    // No clear personal data in the curated lake or the warehouse.
    let folder = tempfile::tempdir().expect("folder");
    for key in stack.lake().list("curated/").await.expect("list") {
        if key.ends_with(".parquet") {
            let path = folder.path().join("part.parquet");
            std::fs::write(&path, stack.lake().get_bytes(&key).await.expect("get")).expect("write");
            let findings = lakestar::mask::scan::scan_parquet(std::fs::File::open(&path).expect("open")).expect("scan");
            assert!(findings.is_empty(), "{key}: {findings:?}");
        }
    }
    for (table, columns) in [
        ("dim_customer", "first_name, last_name, email, phone, postcode"),
        ("dim_store", "manager_email"),
        ("fact_sales", "card_number"),
    ] {
        for row in query_text(warehouse, &format!("SELECT {columns} FROM {table}")).await {
            for value in row.into_iter().flatten() {
                assert_eq!(lakestar::mask::scan::detect(&value), None, "{table}: a value looks like personal data");
            }
        }
    }
}

#[tokio::test]
async fn the_retail_example_into_sqlite_then_a_duplicate_drop_changes_nothing() {
    let home = tempfile::tempdir().expect("home");
    let stack = Stack::open(config(home.path(), None, None)).await.expect("stack");
    let records = run_example(&stack).await;
    assert_example_result(&stack, &records).await;
    assert!(home.path().join("warehouse.db").is_file(), "SQLite in the home by default");
    assert_eq!(std::fs::read_dir(home.path().join("executions")).expect("executions").count(), 9);

    // The same object dropped again: the trigger counts a duplicate, nothing runs.
    let before = snapshot(stack.warehouse()).await;
    let drop = &collect_drops(&[example()]).expect("files")[0];
    let output = stack.drop_file(&drop.key, &drop.path).await.expect("dropped");
    assert_eq!((output.started.len(), output.duplicates.len()), (0, 1));
    assert!(stack.run_started(|_| {}).await.expect("nothing").is_empty());
    assert_eq!(snapshot(stack.warehouse()).await, before);
    drop_stack(stack).await;

    // A new process over the same home knows the executions: still a duplicate.
    let stack = Stack::open(config(home.path(), None, None)).await.expect("reopened");
    let output = stack.drop_file(&drop.key, &drop.path).await.expect("dropped");
    assert_eq!(output.duplicates.len(), 1);
}

async fn drop_stack(stack: Stack) {
    if let Warehouse::Sqlite(pool) = stack.warehouse() {
        pool.close().await;
    }
}

#[tokio::test]
async fn the_retail_example_into_postgresql() {
    let (database, url) = PostgresDatabase::create().await;
    let home = tempfile::tempdir().expect("home");
    let stack = Stack::open(config(home.path(), Some(url), None)).await.expect("stack");
    let records = run_example(&stack).await;
    assert_example_result(&stack, &records).await;
    database.drop_database(stack.warehouse().clone()).await;
}

#[tokio::test]
async fn a_fault_in_each_stage_re_driven_equals_a_clean_run() {
    let clean_home = tempfile::tempdir().expect("home");
    let clean = Stack::open(config(clean_home.path(), None, None)).await.expect("stack");
    run_example(&clean).await;
    let clean_warehouse = snapshot(clean.warehouse()).await;
    let clean_lake = lake_objects(&clean).await;

    for stage in ["ingest", "validate", "mask", "load"] {
        let home = tempfile::tempdir().expect("home");
        let stack = Stack::open(config(home.path(), None, Some(stage))).await.expect("stack");
        let records = run_example(&stack).await;
        let expected_state = match stage {
            "ingest" => "Ingest",
            "validate" => "Validate",
            "mask" => "Mask",
            _ => "Load",
        };
        for record in &records {
            assert_eq!(record.status, "FAILED", "{stage}: {}", record.name);
            assert_eq!(record.error.as_deref(), Some("InjectedFault"), "{stage}: not retried by the state machine");
            assert_eq!(record.failed_state.as_deref(), Some(expected_state));
        }
        // Re-drive every failed execution in the order the runs started.
        let mut failed = records.clone();
        failed.sort_by(|a, b| a.start_date.cmp(&b.start_date).then(a.name.cmp(&b.name)));
        for record in &failed {
            let redriven = stack.redrive(&record.name).await.expect("re-driven");
            assert_eq!(redriven.status, "SUCCEEDED", "{stage}: {} {:?}", redriven.name, redriven.cause);
            assert_eq!(redriven.redrive_count, 1);
            let kinds: Vec<&str> = redriven.history.iter().map(|event| event.kind.as_str()).collect();
            assert!(kinds.contains(&"ExecutionRedriven") && kinds.last() == Some(&"ExecutionSucceeded"), "{kinds:?}");
            // The states before the failed one ran once: their task was scheduled once.
            let scheduled = redriven.history.iter().filter(|event| event.kind == "TaskScheduled").count();
            assert_eq!(scheduled, 5, "{stage}: four stages plus the failed attempt, none repeated: {kinds:?}");
        }
        assert_eq!(snapshot(stack.warehouse()).await, clean_warehouse, "{stage}: the warehouse equals a clean run's");
        let lake = lake_objects(&stack).await;
        assert_eq!(lake.keys().collect::<Vec<_>>(), clean_lake.keys().collect::<Vec<_>>(), "{stage}: the same objects");
        for (key, bytes) in &lake {
            assert!(clean_lake.get(key) == Some(bytes), "{stage}: {key} differs from a clean run's");
        }
        drop_stack(stack).await;
    }
}

/// The retail example's lake, object by object, against `tests/golden/retail-lake.sha256`:
/// a reorganisation of the code must leave every byte where it was. A change meant to alter
/// the lake regenerates the file with `LAKESTAR_UPDATE_GOLDEN=1` and says why in its commit.
#[tokio::test]
async fn the_retail_example_lake_is_byte_identical_to_the_golden_manifest() {
    use sha2::{Digest, Sha256};
    let home = tempfile::tempdir().expect("home");
    let stack = Stack::open(config(home.path(), None, None)).await.expect("stack");
    run_example(&stack).await;
    let mut manifest = String::new();
    for (key, bytes) in lake_objects(&stack).await {
        let digest: String = Sha256::digest(&bytes).iter().map(|byte| format!("{byte:02x}")).collect();
        manifest.push_str(&format!("{digest}  {key}\n"));
    }
    drop_stack(stack).await;
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/retail-lake.sha256");
    if std::env::var("LAKESTAR_UPDATE_GOLDEN").is_ok_and(|value| value == "1") {
        std::fs::write(&golden, &manifest).expect("write the golden manifest");
    }
    let expected = std::fs::read_to_string(&golden).expect("tests/golden/retail-lake.sha256");
    let differing: Vec<&str> = manifest
        .lines()
        .filter(|line| !expected.lines().any(|golden| golden == *line))
        .chain(expected.lines().filter(|line| !manifest.lines().any(|actual| actual == *line)))
        .collect();
    assert!(differing.is_empty(), "objects that differ from the golden manifest:\n{}", differing.join("\n"));
}
