//! Issue 32: the offline stack stopped at every stage boundary and inside every stage (SIGKILL,
//! SIGTERM, Ctrl-C), and on a full disk, then recovered with the commands the CLI prints: the
//! lake and the warehouse equal a clean run's, object by object and row by row.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const KEY: &str = "fault-test-key-0123456789abcdef";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail")
}

fn lakestar(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
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
fn lake(home: &Path) -> BTreeMap<String, Vec<u8>> {
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
fn warehouse(home: &Path) -> BTreeMap<String, Vec<Vec<Option<String>>>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        use sqlx::Row;
        let url = format!("sqlite://{}?mode=ro", home.join("warehouse.db").display());
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
fn assert_equals_clean(home: &Path, clean: &Path, what: &str) {
    let (lake, clean_lake) = (lake(home), lake(clean));
    assert_eq!(lake.keys().collect::<Vec<_>>(), clean_lake.keys().collect::<Vec<_>>(), "{what}: the same objects");
    for (key, bytes) in &lake {
        assert!(clean_lake.get(key) == Some(bytes), "{what}: {key} differs from a clean run's");
    }
    let (tables, clean_tables) = (warehouse(home), warehouse(clean));
    assert_eq!(tables.keys().collect::<Vec<_>>(), clean_tables.keys().collect::<Vec<_>>(), "{what}: the same tables");
    for (table, rows) in &tables {
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
fn clean_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("home");
    let example = example().to_string_lossy().into_owned();
    let (code, stdout, stderr) = lakestar(&["run", &example, "--home", &home.path().to_string_lossy()], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    home
}

/// Starts `lakestar run` on the example pausing at `point`, and waits until it is there.
fn run_paused_at(home: &str, point: &str) -> std::process::Child {
    let example = example().to_string_lossy().into_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lakestar"))
        .args(["run", &example, "--home", home])
        .env("LAKESTAR_MASKING_KEY", KEY)
        .env("LAKESTAR_TEST_PAUSE_IN", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    let marker = format!("lakestar test: paused at {point}");
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains(&marker) => break,
            Some(_) => continue,
            None => panic!("the run ended before it reached {point}"),
        }
    }
    // Keep reading stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

/// Killed (SIGKILL), terminated (SIGTERM) or interrupted (SIGINT, as Ctrl-C) as the first
/// file's stage begins and once its handler returned, then recovered as the CLI says: the next
/// command names the stopped run and its re-drive; the re-drive and a run of the rest give the
/// clean run's lake and warehouse.
#[test]
fn stopped_at_every_stage_then_recovered_as_printed_equals_a_clean_run() {
    let clean = clean_home();
    let example = example().to_string_lossy().into_owned();
    let mut points: Vec<(&str, &str)> = Vec::new();
    for state in ["Ingest", "Validate", "Mask", "Load"] {
        points.push((state, "KILL"));
    }
    for point in ["Ingest:after", "Validate:after", "Mask:after", "Load:after"] {
        points.push((point, "KILL"));
    }
    points.extend([("Validate", "TERM"), ("Load:after", "TERM"), ("Mask", "INT"), ("Ingest:after", "INT")]);
    for (point, signal) in points {
        let what = format!("{signal} at {point}");
        let home = tempfile::tempdir().expect("home");
        let home_text = home.path().to_string_lossy().into_owned();
        let child = run_paused_at(&home_text, point);
        let status =
            Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().expect("kill");
        assert!(status.success(), "{what}");
        let output = child.wait_with_output().expect("stopped");
        assert!(!output.status.success(), "{what}: the stopped run does not report success");

        // What the CLI says next, and its command as printed.
        let (code, listed, stderr) = lakestar(&["executions", "--home", &home_text], &[]);
        assert_eq!(code, 0, "{what}: {stderr}");
        let printed = format!("lakestar redrive --all-failed --home {home_text}");
        let said = format!("{listed}{stderr}");
        assert!(said.contains(&printed) || said.contains("lakestar redrive"), "{what}: names the re-drive: {said}");
        let (code, stdout, stderr) = lakestar(&["redrive", "--all-failed", "--home", &home_text], &[]);
        assert_eq!(code, 0, "{what}: {stdout}{stderr}");
        assert!(stdout.contains("SUCCEEDED"), "{what}: {stdout}");
        let (code, stdout, stderr) = lakestar(&["run", &example, "--home", &home_text], &[]);
        assert_eq!(code, 0, "{what}: {stdout}{stderr}");
        assert_equals_clean(home.path(), clean.path(), &what);
    }
}

/// A tmpfs of `megabytes` mounted on a new folder, unmounted when dropped.
struct SmallDisk {
    folder: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let folder = tempfile::tempdir().expect("a mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(folder.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root (the CI runs as root)");
        SmallDisk { folder }
    }

    fn grow(&self, megabytes: u32) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={megabytes}m")])
            .arg(self.folder.path())
            .status()
            .expect("mount runs");
        assert!(status.success());
    }

    fn path(&self) -> &Path {
        self.folder.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.folder.path()).status();
    }
}

/// A copy of the example with a larger sales delivery (about 2.6 MB of CSV) on a fourth day.
fn example_with_large_sales() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("example");
    let copy = Command::new("cp").arg("-r").arg(example().join("landing")).arg(dir.path()).status().expect("cp");
    assert!(copy.success());
    std::fs::copy(example().join("pipeline.toml"), dir.path().join("pipeline.toml")).expect("contract");
    let header = std::fs::read_to_string(example().join("landing/2024-01-01/sales.csv")).expect("sales");
    let mut text = header.lines().next().expect("a header").to_string();
    text.push('\n');
    for order in 0..30_000 {
        let quantity = order % 9 + 1;
        text.push_str(&format!(
            "O{:07},1,2024-01-04,2024-01-05,C1001,P001,S01,{quantity},1.85,4111 1111 1111 1111,store\n",
            order + 1_000_000
        ));
    }
    std::fs::create_dir_all(dir.path().join("landing/2024-01-04")).expect("a day");
    std::fs::write(dir.path().join("landing/2024-01-04/sales.csv"), text).expect("large sales");
    dir
}

/// Issue 32.1 and 32.4 on a full disk: the home and the temporary folder on a small tmpfs.
/// Each size fills the disk at another point (the landing copy, a stage's objects, the
/// warehouse); the failure is `DiskFull` naming the place, nothing is lost, and once there is
/// room the printed re-drive finishes the run: the lake and warehouse equal a clean run's.
#[test]
fn a_full_disk_is_named_and_once_freed_the_printed_re_drive_equals_a_clean_run() {
    let example = example_with_large_sales();
    let example_text = example.path().to_string_lossy().into_owned();
    let clean = tempfile::tempdir().expect("home");
    let (code, stdout, stderr) = lakestar(&["run", &example_text, "--home", &clean.path().to_string_lossy()], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mut failures = Vec::new();
    for megabytes in [4, 7, 10] {
        let disk = SmallDisk::mount(megabytes);
        let home = disk.path().join("home");
        let temp = disk.path().join("tmp");
        std::fs::create_dir_all(&temp).expect("tmp");
        let home_text = home.to_string_lossy().into_owned();
        let temp_text = temp.to_string_lossy().into_owned();
        let env = [("TMPDIR", temp_text.as_str())];
        let (code, stdout, stderr) = lakestar(&["run", &example_text, "--home", &home_text], &env);
        let said = format!("{stdout}{stderr}");
        if code == 0 {
            continue;
        }
        assert!(said.contains("DiskFull") || said.contains("disk is full"), "{megabytes} MB: {said}");
        assert!(!said.contains("InternalError") && !said.contains("S3Unavailable"), "{megabytes} MB: {said}");
        failures.push(megabytes);

        disk.grow(256);
        let (code, stdout, stderr) = lakestar(&["redrive", "--all-failed", "--home", &home_text], &env);
        assert_eq!(code, 0, "{megabytes} MB: {stdout}{stderr}");
        let (code, stdout, stderr) = lakestar(&["run", &example_text, "--home", &home_text], &env);
        assert_eq!(code, 0, "{megabytes} MB: {stdout}{stderr}");
        assert_equals_clean(&home, clean.path(), &format!("{megabytes} MB"));
    }
    assert!(failures.len() >= 2, "the disk filled at several points: {failures:?}");
}
