//! Issue 32.2 and 32.7: several `lakestar` processes at once, on one home and on homes that
//! share one warehouse. Checked object by object (every object read back through S3 with its
//! checksum, every Parquet part's `_run_id` the run its key names), every SCD2 invariant, no
//! duplicate execution, no upload left behind, and the result equal to one clean run's.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{
    KEY, PostgresDatabase, assert_equals_clean, assert_no_upload_left, assert_tables_equal, clean_home, example, lake,
    postgres_tables, sqlite_tables, warehouse,
};
use lakestar::contract::{Contract, TableKind};

/// Starts `lakestar run` on the example for each argument list at once and waits for all.
fn run_at_once(homes: &[Vec<String>]) -> Vec<(i32, String)> {
    let example = example().to_string_lossy().into_owned();
    let children: Vec<_> = homes
        .iter()
        .map(|extra| {
            Command::new(env!("CARGO_BIN_EXE_lakestar"))
                .args(["run", &example])
                .args(extra)
                .env("LAKESTAR_MASKING_KEY", KEY)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("lakestar starts")
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().expect("lakestar ends");
            let said =
                format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            (output.status.code().unwrap_or(-1), said)
        })
        .collect()
}

/// The example's landing files.
fn landing_files() -> usize {
    let mut count = 0;
    let mut pending = vec![example().join("landing")];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(folder).expect("landing").flatten() {
            if entry.path().is_dir() {
                pending.push(entry.path());
            } else {
                count += 1;
            }
        }
    }
    count
}

/// Every object of the home's lake read back through the S3 protocol (the SDK checks each
/// body against the checksum stored with it), and every Parquet part under `…/run=<id>/`
/// holding only rows of run `<id>` where it has a `_run_id` column. Returns the parts checked.
fn assert_objects_whole_and_of_their_run(home: &Path) -> usize {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let s3 = lakestar::lake::EmbeddedS3::start(&home.join("s3")).await.expect("the home's S3");
        let lake = lakestar::lake::Lake::new(s3.client(), "lakestar-lake");
        let keys = lake.list("").await.expect("listed");
        assert!(!keys.is_empty(), "the lake holds objects");
        let mut checked = 0;
        for key in keys {
            let file = tempfile::tempfile().expect("a spool");
            lake.download(&key, file.try_clone().expect("spool"))
                .await
                .unwrap_or_else(|error| panic!("{key}: {error}"));
            let Some(run) = key.split('/').find_map(|part| part.strip_prefix("run=")) else { continue };
            if !key.ends_with(".parquet") {
                continue;
            }
            let run = run.trim_end_matches(".parquet");
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap_or_else(|error| panic!("{key}: {error}"))
                .build()
                .expect("a reader");
            for batch in reader {
                let batch = batch.unwrap_or_else(|error| panic!("{key}: {error}"));
                let Some(column) = batch.column_by_name("_run_id") else { break };
                let values = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8).expect("text");
                let values = values.as_any().downcast_ref::<arrow::array::StringArray>().expect("strings");
                for value in values.iter() {
                    assert_eq!(value, Some(run), "{key} holds a row of another run");
                }
                checked += 1;
            }
        }
        checked
    })
}

/// Every SCD2 invariant of the contract's dimensions in a SQLite warehouse: per natural key
/// one current version, the last and open; each version ends where the next begins.
fn assert_history_consistent(database: &Path) {
    let contract = Contract::load(&example().join("pipeline.toml")).expect("the contract");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        use sqlx::Row;
        let url = format!("sqlite://{}?mode=ro", database.display());
        let pool = sqlx::SqlitePool::connect(&url).await.expect("the warehouse");
        for dataset in contract.datasets.iter().filter(|dataset| dataset.table.kind == TableKind::Dimension) {
            let table = &dataset.table.name;
            let key: Vec<String> =
                dataset.table.natural_key.iter().map(|column| format!("CAST(\"{column}\" AS TEXT)")).collect();
            let statement = format!(
                "SELECT {} AS natural_key, CAST(valid_from AS TEXT), CAST(valid_to AS TEXT), CAST(is_current AS TEXT) \
                 FROM \"{table}\" ORDER BY 1, 2",
                key.join(" || '|' || ")
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(statement)).fetch_all(&pool).await.expect("history");
            assert!(!rows.is_empty(), "{table} has rows");
            let mut by_key: BTreeMap<String, Vec<[Option<String>; 3]>> = BTreeMap::new();
            for row in &rows {
                by_key.entry(row.get(0)).or_default().push([row.get(1), row.get(2), row.get(3)]);
            }
            for (key, versions) in by_key {
                let current = versions.iter().filter(|version| version[2].as_deref() == Some("1")).count();
                assert_eq!(current, 1, "{table} {key}: one current version in {versions:?}");
                for pair in versions.windows(2) {
                    assert_eq!(pair[0][1], pair[1][0], "{table} {key}: a version ends where the next begins");
                }
                let last = versions.last().expect("a version");
                assert_eq!((&last[1], last[2].as_deref()), (&None, Some("1")), "{table} {key}: the last is open");
            }
        }
        pool.close().await;
    });
}

/// Six `lakestar run`s of the example started at once on one new home: they take turns (the
/// ones waiting say so), exactly one execution per file runs, and the lake and warehouse equal
/// a clean run's, object by object.
#[test]
fn processes_started_at_once_on_one_home_take_turns_and_equal_a_clean_run() {
    let clean = clean_home();
    let parent = tempfile::tempdir().expect("a folder");
    let home = parent.path().join("new-home");
    let home_text = home.to_string_lossy().into_owned();
    let runs: Vec<Vec<String>> = (0..6).map(|_| vec!["--home".to_string(), home_text.clone()]).collect();
    let results = run_at_once(&runs);
    for (code, said) in &results {
        assert_eq!(*code, 0, "{said}");
    }
    assert!(
        results.iter().any(|(_, said)| said.contains("Another lakestar process")),
        "a process that waits says why: {results:?}"
    );
    let records = std::fs::read_dir(home.join("executions"))
        .expect("executions")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".json"))
        .count();
    assert_eq!(records, landing_files(), "one execution per file, however many processes saw it");
    assert_equals_clean(&home, clean.path(), "six processes at once");
    assert_no_upload_left(&home);
    assert!(assert_objects_whole_and_of_their_run(&home) > 0, "Parquet parts were checked");
    assert_history_consistent(&home.join("warehouse.db"));
}

/// Arguments of `lakestar run` for each of `homes` loading into `url`.
fn into_warehouse(homes: &[tempfile::TempDir], url: &str) -> Vec<Vec<String>> {
    homes
        .iter()
        .map(|home| {
            vec!["--home".into(), home.path().to_string_lossy().into_owned(), "--warehouse".into(), url.to_string()]
        })
        .collect()
}

/// Six homes loading the same files into one SQLite warehouse at once: the warehouse set-up
/// (migrations, tables) does not race, each run is loaded once, and the warehouse equals the
/// warehouse of one clean run.
#[test]
fn homes_sharing_one_warehouse_load_each_run_once() {
    let clean = clean_home();
    let shared = tempfile::tempdir().expect("a warehouse folder");
    let database = shared.path().join("shared.db");
    let url = format!("sqlite://{}", database.display());
    let homes: Vec<tempfile::TempDir> = (0..6).map(|_| tempfile::tempdir().expect("home")).collect();
    for (code, said) in run_at_once(&into_warehouse(&homes, &url)) {
        assert_eq!(code, 0, "{said}");
    }
    assert_tables_equal(&sqlite_tables(&database), &warehouse(clean.path()), "six homes, one SQLite warehouse");
    assert_history_consistent(&database);
    for home in &homes {
        assert_eq!(lake(home.path()).keys().collect::<Vec<_>>(), lake(clean.path()).keys().collect::<Vec<_>>());
    }
}

/// The same with PostgreSQL: six homes into one new database at once equal one home's run into
/// another.
#[test]
fn homes_sharing_one_postgres_warehouse_load_each_run_once() {
    let (clean, shared) = (PostgresDatabase::create(), PostgresDatabase::create());
    let clean_homes = [tempfile::tempdir().expect("home")];
    for (code, said) in run_at_once(&into_warehouse(&clean_homes, &clean.url)) {
        assert_eq!(code, 0, "{said}");
    }
    let homes: Vec<tempfile::TempDir> = (0..6).map(|_| tempfile::tempdir().expect("home")).collect();
    for (code, said) in run_at_once(&into_warehouse(&homes, &shared.url)) {
        assert_eq!(code, 0, "{said}");
    }
    let tables = postgres_tables(&shared.url);
    assert!(tables.get("fact_sales").is_some_and(|rows| !rows.is_empty()), "facts were loaded");
    assert_tables_equal(&tables, &postgres_tables(&clean.url), "six homes, one PostgreSQL warehouse");
}
