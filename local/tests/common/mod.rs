//! What the offline stack's tests share: running `lakestar`, and reading a home's lake and
//! warehouse to compare them with a clean run's.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const KEY: &str = "fault-test-key-0123456789abcdef";

pub fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail")
}

pub fn lakestar(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_lakestar"))
        .args(args)
        .envs(env.iter().copied())
        .env("LAKESTAR_MASKING_KEY", KEY)
        .output()
        .expect("lakestar runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every object of the home's lake bucket (the embedded store's own files left out).
pub fn lake(home: &Path) -> BTreeMap<String, Vec<u8>> {
    let bucket = home.join("s3/lakestar-lake");
    let mut objects = BTreeMap::new();
    let mut pending = vec![bucket.clone()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("a folder").flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                let key = path.strip_prefix(&bucket).expect("in the bucket").to_string_lossy().into_owned();
                objects.insert(key, std::fs::read(&path).expect("an object"));
            }
        }
    }
    objects
}

/// Every table of the home's SQLite warehouse, every row as text in a fixed order; when rows
/// were written (`…_at`) and how long stages took left out.
pub fn warehouse(home: &Path) -> BTreeMap<String, Vec<Vec<Option<String>>>> {
    sqlite_tables(&home.join("warehouse.db"))
}

/// Every table of a SQLite warehouse, as [`warehouse`] reads it.
pub fn sqlite_tables(database: &Path) -> BTreeMap<String, Vec<Vec<Option<String>>>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        use sqlx::Row;
        let url = format!("sqlite://{}?mode=ro", database.display());
        let pool = sqlx::SqlitePool::connect(&url).await.expect("the warehouse");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
        )
        .fetch_all(&pool)
        .await
        .expect("tables");
        let mut content = BTreeMap::new();
        for table in tables {
            let columns: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA table_info(\"{table}\")")))
                .fetch_all(&pool)
                .await
                .expect("columns")
                .iter()
                .map(|row| row.get::<String, _>(1))
                .filter(|name| !(name.ends_with("_at") || table == "load_audit" && name == "id"))
                .map(|name| format!("CAST(\"{name}\" AS TEXT)"))
                .collect();
            let order: Vec<String> = (1..=columns.len()).map(|index| index.to_string()).collect();
            // How long a stage took is the one figure a clean run does not repeat.
            let only = if table == "quality_metrics" { " WHERE metric <> 'duration_seconds'" } else { "" };
            let statement =
                format!("SELECT {} FROM \"{table}\"{only} ORDER BY {}", columns.join(", "), order.join(", "));
            let rows = sqlx::query(sqlx::AssertSqlSafe(statement)).fetch_all(&pool).await.expect("rows");
            let rows = rows
                .iter()
                .map(|row| (0..columns.len()).map(|index| row.get::<Option<String>, _>(index)).collect())
                .collect();
            content.insert(table, rows);
        }
        pool.close().await;
        content
    })
}

/// Asserts that `home` holds what `clean` does.
pub fn assert_equals_clean(home: &Path, clean: &Path, what: &str) {
    let (lake, clean_lake) = (lake(home), lake(clean));
    assert_eq!(lake.keys().collect::<Vec<_>>(), clean_lake.keys().collect::<Vec<_>>(), "{what}: the same objects");
    for (key, bytes) in &lake {
        assert!(clean_lake.get(key) == Some(bytes), "{what}: {key} differs from a clean run's");
    }
    assert_tables_equal(&warehouse(home), &warehouse(clean), what);
}

/// Asserts that a warehouse's tables, read by [`sqlite_tables`], are a clean run's.
pub fn assert_tables_equal(
    tables: &BTreeMap<String, Vec<Vec<Option<String>>>>,
    clean_tables: &BTreeMap<String, Vec<Vec<Option<String>>>>,
    what: &str,
) {
    assert_eq!(tables.keys().collect::<Vec<_>>(), clean_tables.keys().collect::<Vec<_>>(), "{what}: the same tables");
    for (table, rows) in tables {
        let clean_rows = &clean_tables[table];
        if rows == clean_rows {
            continue;
        }
        let (set, clean_set): (std::collections::BTreeSet<_>, std::collections::BTreeSet<_>) =
            (rows.iter().collect(), clean_rows.iter().collect());
        let extra: Vec<_> = set.difference(&clean_set).take(5).collect();
        let missing: Vec<_> = clean_set.difference(&set).take(5).collect();
        panic!(
            "{what}: {table} differs from a clean run's: {} rows against {}; not in the clean run {extra:?}; missing {missing:?}",
            rows.len(),
            clean_rows.len()
        );
    }
}

/// A clean run of the retail example in a home of its own.
pub fn clean_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("home");
    let example = example().to_string_lossy().into_owned();
    let (code, stdout, stderr) = lakestar(&["run", &example, "--home", &home.path().to_string_lossy()], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    home
}

const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A new PostgreSQL database on the local server (`bash .ci/run` starts it), dropped with it.
pub struct PostgresDatabase {
    pub name: String,
    pub url: String,
}

impl PostgresDatabase {
    pub fn create() -> PostgresDatabase {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_nanos();
        let name = format!("lakestar_local_{}_{nanos}", std::process::id());
        postgres_admin(&format!("CREATE DATABASE \"{name}\""));
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        PostgresDatabase { name, url }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        postgres_admin(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name));
    }
}

fn postgres_admin(statement: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let admin = sqlx::PgPool::connect(POSTGRES_ADMIN).await.expect("PostgreSQL on 127.0.0.1:5432");
        sqlx::query(sqlx::AssertSqlSafe(statement.to_string())).execute(&admin).await.expect(statement);
        admin.close().await;
    });
}

/// Every table of a PostgreSQL warehouse, read as [`sqlite_tables`] reads SQLite's.
pub fn postgres_tables(url: &str) -> BTreeMap<String, Vec<Vec<Option<String>>>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let pool = sqlx::PgPool::connect(url).await.expect("the warehouse");
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' ORDER BY table_name, ordinal_position",
        )
        .fetch_all(&pool)
        .await
        .expect("columns");
        let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (table, column) in columns {
            if column.ends_with("_at") || table == "load_audit" && column == "id" {
                continue;
            }
            by_table.entry(table).or_default().push(format!("CAST(\"{column}\" AS TEXT)"));
        }
        let mut content = BTreeMap::new();
        for (table, columns) in by_table {
            let order: Vec<String> = (1..=columns.len()).map(|index| index.to_string()).collect();
            let only = if table == "quality_metrics" { " WHERE metric <> 'duration_seconds'" } else { "" };
            let statement =
                format!("SELECT {} FROM \"{table}\"{only} ORDER BY {}", columns.join(", "), order.join(", "));
            let rows: Vec<sqlx::postgres::PgRow> =
                sqlx::query(sqlx::AssertSqlSafe(statement)).fetch_all(&pool).await.expect("rows");
            let rows = rows
                .iter()
                .map(|row| {
                    use sqlx::Row;
                    (0..columns.len()).map(|index| row.get::<Option<String>, _>(index)).collect()
                })
                .collect();
            content.insert(table, rows);
        }
        pool.close().await;
        content
    })
}

/// Nothing of an upload left in the embedded store: no temporary file, no multipart upload.
pub fn assert_no_upload_left(home: &Path) {
    let mut pending = vec![home.join("s3")];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(folder).expect("a folder").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                !name.contains(".internal.part") && !name.contains("upload"),
                "{} is left of an upload",
                entry.path().display()
            );
            if entry.path().is_dir() {
                pending.push(entry.path());
            }
        }
    }
}
