//! The `lakestar` command line: `check` and `scan`, run as a user would.

use std::path::Path;
use std::process::Command;

fn lakestar(args: &[&str]) -> (i32, String, String) {
    lakestar_with(args, &[])
}

#[test]
fn check_accepts_the_example_and_names_the_line_of_a_mistake() {
    let (code, stdout, _) = lakestar(&["check", "examples/retail/pipeline.toml"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("ok, 4 dataset(s)"), "{stdout}");

    let dir = tempfile::tempdir().expect("folder");
    let path = dir.path().join("pipeline.toml");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/retail/pipeline.toml"))
        .expect("example contract");
    std::fs::write(&path, text.replacen("type = \"date\"", "type = \"datetime\"", 1)).expect("write");
    let (code, _, stderr) = lakestar(&["check", &path.to_string_lossy()]);
    assert_eq!(code, 1);
    assert!(stderr.contains("pipeline.toml:") && stderr.contains("unknown type `datetime`"), "{stderr}");
}

#[test]
fn scan_reports_clear_pii_by_column_and_passes_masked_values() {
    let (code, stdout, _) = lakestar(&["scan", "examples/retail/landing/2024-01-01/customers.csv"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("column `email`: 11 value(s) look like email"), "{stdout}");
    assert!(stdout.contains("column `phone`: 12 value(s) look like phone"), "{stdout}");
    assert!(!stdout.contains("amelia"), "values are never printed: {stdout}");

    let dir = tempfile::tempdir().expect("folder");
    let masked = dir.path().join("masked.csv");
    std::fs::write(&masked, "id,email,card\nC1,6b046514a8686ddb660eab211d83c6bd@example.com,************1111\n")
        .expect("write");
    let (code, stdout, _) = lakestar(&["scan", &dir.path().to_string_lossy()]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("scanned 1 file(s): 0 column finding(s)"), "{stdout}");
}

#[tokio::test]
async fn serve_keeps_an_s3_endpoint_up_that_the_sdk_can_use() {
    use std::io::BufRead;
    let home = tempfile::tempdir().expect("folder");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lakestar"))
        .args(["serve", "--port", "0", "--check-port", "0", "--console-port", "0", "--home"])
        .arg(home.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("lakestar serve runs");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut first).expect("a line");
    let endpoint = first.split_whitespace().nth(3).expect("the URL").to_string();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{first}");
    let client = lakestar::lake::EmbeddedS3::client_for(&endpoint);
    client
        .put_object()
        .bucket("lakestar-lake")
        .key("landing/x.csv")
        .body(b"a\n1\n".to_vec().into())
        .send()
        .await
        .expect("put");
    let listed = client.list_objects_v2().bucket("lakestar-lake").send().await.expect("list");
    assert_eq!(listed.contents().len(), 1);
    let _ = child.kill();
    let _ = child.wait();
    assert!(home.path().join("s3/lakestar-lake/landing/x.csv").is_file(), "buckets are folders under <home>/s3");
}

fn lakestar_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_lakestar"))
        .args(args)
        .envs(env.iter().copied())
        .env("LAKESTAR_MASKING_KEY", "cli-test-key-0123456789abcdef")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("lakestar runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_failed_run_is_listed_explained_and_re_driven_from_the_command_line() {
    let home = tempfile::tempdir().expect("home");
    let home = home.path().to_string_lossy().into_owned();
    let one_day = tempfile::tempdir().expect("example");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/retail");
    std::fs::copy(format!("{example}/pipeline.toml"), one_day.path().join("pipeline.toml")).expect("contract");
    let landing = one_day.path().join("landing/2024-01-01");
    std::fs::create_dir_all(&landing).expect("landing");
    std::fs::copy(format!("{example}/landing/2024-01-01/customers.csv"), landing.join("customers.csv")).expect("file");
    let dir = one_day.path().to_string_lossy().into_owned();

    let (code, stdout, stderr) = lakestar_with(&["run", &dir, "--home", &home], &[("LAKESTAR_FAULT", "mask")]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("FAILED") && stdout.contains("failed in Mask: InjectedFault"), "{stdout}");
    assert!(stdout.contains("lakestar redrive --all-failed"), "the fix is named: {stdout}");

    let (code, stdout, _) = lakestar_with(&["executions", "--home", &home], &[]);
    assert_eq!(code, 0);
    let run = stdout.lines().nth(1).and_then(|line| line.split_whitespace().next()).expect("a run").to_string();
    assert!(run.starts_with("customers-") && stdout.contains("FAILED"), "{stdout}");

    let (code, stdout, _) = lakestar_with(&["history", &run, "--home", &home], &[]);
    assert_eq!(code, 1, "the execution failed");
    for expected in ["ExecutionStarted", "TaskScheduled", "TaskFailed", "error=InjectedFault", "ExecutionFailed"] {
        assert!(stdout.contains(expected), "{expected} in {stdout}");
    }

    // The same file again is a duplicate, whatever the fault setting.
    let (_, stdout, _) = lakestar_with(&["run", &dir, "--home", &home], &[]);
    assert!(stdout.contains("duplicate"), "{stdout}");

    let (code, stdout, stderr) = lakestar_with(&["redrive", "--all-failed", "--home", &home], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("SUCCEEDED") && stdout.contains("dim_customer: 6 new keys"), "{stdout}");
    let (_, stdout, _) = lakestar_with(&["history", &run, "--home", &home], &[]);
    assert!(stdout.contains("ExecutionRedriven") && stdout.contains("ExecutionSucceeded"), "{stdout}");
}

#[test]
fn watch_starts_an_execution_for_a_file_dropped_into_the_folder() {
    let home = tempfile::tempdir().expect("home");
    let folder = tempfile::tempdir().expect("watched");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/retail");
    std::fs::copy(format!("{example}/pipeline.toml"), folder.path().join("pipeline.toml")).expect("contract");
    std::fs::create_dir_all(folder.path().join("landing")).expect("landing");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lakestar"))
        .args(["watch", &folder.path().to_string_lossy(), "--home", &home.path().to_string_lossy(), "--max-runs", "1"])
        .env("LAKESTAR_MASKING_KEY", "cli-test-key-0123456789abcdef")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("watch starts");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::create_dir_all(folder.path().join("landing/2024-01-05")).expect("delivery folder");
    std::fs::copy(
        format!("{example}/landing/2024-01-01/stores.json"),
        folder.path().join("landing/2024-01-05/stores.json"),
    )
    .expect("drop");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("watch did not pick the file up within a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.success());
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut stdout).expect("output");
    assert!(stdout.contains("stores-") && stdout.contains("SUCCEEDED"), "{stdout}");
}

/// A copy of the retail example's contract and the given landing files, in a folder.
fn example_with(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("example");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/retail");
    std::fs::copy(format!("{example}/pipeline.toml"), dir.path().join("pipeline.toml")).expect("contract");
    for file in files {
        let target = dir.path().join("landing").join(file);
        std::fs::create_dir_all(target.parent().expect("a folder")).expect("landing");
        std::fs::copy(format!("{example}/landing/{file}"), target).expect("file");
    }
    dir
}

/// Issue 23.3, 23.4, 23.11 and 23.12: the home remembers its warehouse, so the printed
/// re-drive loads where the run did; a failed file's duplicate says what state its run is in
/// and what to do; it can be processed again or abandoned; failures print their message once.
#[test]
fn hints_act_on_the_run_s_warehouse_and_a_failed_file_can_be_processed_again_or_abandoned() {
    let home = tempfile::tempdir().expect("home");
    let home = home.path().to_string_lossy().into_owned();
    let example = example_with(&["2024-01-01/customers.csv"]);
    let dir = example.path().to_string_lossy().into_owned();
    let warehouse = format!("sqlite://{}", example.path().join("elsewhere.db").display());

    let (code, stdout, stderr) =
        lakestar_with(&["run", &dir, "--home", &home, "--warehouse", &warehouse], &[("LAKESTAR_FAULT", "load")]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("failed in Load: InjectedFault: LAKESTAR_FAULT=load"), "plain message: {stdout}");
    assert!(!stdout.contains("errorType"), "no raw JSON: {stdout}");
    assert!(stdout.contains(&format!("lakestar redrive --all-failed --home {home}")), "{stdout}");
    assert!(stdout.contains("'SELECT * FROM dim_customer LIMIT 20'"), "the contract's own table: {stdout}");

    // The same file again: the duplicate says its run failed, and what to do.
    let (_, stdout, _) = lakestar_with(&["run", &dir, "--home", &home], &[]);
    assert!(
        stdout.contains("which is FAILED in Load (InjectedFault)") && stdout.contains("lakestar reprocess"),
        "{stdout}"
    );
    // Another warehouse for this home is refused unless asked for by name.
    let (code, _, stderr) =
        lakestar_with(&["redrive", "--all-failed", "--home", &home, "--warehouse", "sqlite://x.db"], &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--switch-warehouse"), "{stderr}");

    // The hint as printed, without --warehouse: it loads where the run did.
    let (code, stdout, stderr) = lakestar_with(&["redrive", "--all-failed", "--home", &home], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("dim_customer: 6 new keys"), "{stdout}");
    assert!(example.path().join("elsewhere.db").is_file() && !Path::new(&home).join("warehouse.db").exists());

    // Processed again as a new run, then that one abandoned after a failure.
    let run = first_run(&home);
    let (code, stdout, stderr) = lakestar_with(&["reprocess", &run, "--home", &home], &[("LAKESTAR_FAULT", "mask")]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("failed in Mask"), "{stdout}");
    let (_, listed, _) = lakestar_with(&["executions", "--home", &home], &[]);
    let second = listed
        .lines()
        .find(|line| line.contains("FAILED"))
        .and_then(|line| line.split_whitespace().next())
        .expect("the new run")
        .to_string();
    assert_ne!(second, run, "a new run: {listed}");
    let (code, stdout, _) = lakestar_with(&["abandon", &second, "--home", &home], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("ABANDONED"), "{stdout}");
    let (code, stdout, _) = lakestar_with(&["redrive", "--all-failed", "--home", &home], &[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Nothing to re-drive"), "{stdout}");
}

fn first_run(home: &str) -> String {
    let (_, stdout, _) = lakestar_with(&["executions", "--home", home], &[]);
    stdout.lines().nth(1).and_then(|line| line.split_whitespace().next()).expect("a run").to_string()
}

/// Issue 32.1: a run killed in the middle is recognised as interrupted and resumed by the
/// command the CLI prints; SIGTERM records the run as aborted before the process exits.
#[test]
fn a_killed_or_terminated_run_is_resumed_by_the_printed_command() {
    let example = example_with(&["2024-01-01/customers.csv"]);
    let dir = example.path().to_string_lossy().into_owned();
    for (signal, expected) in [("KILL", "Interrupted"), ("TERM", "Aborted")] {
        let home = tempfile::tempdir().expect("home");
        let home = home.path().to_string_lossy().into_owned();
        // The load stage waits long enough (a retried fault) to be stopped inside the execution.
        let child = Command::new(env!("CARGO_BIN_EXE_lakestar"))
            .args(["run", &dir, "--home", &home])
            .env("LAKESTAR_MASKING_KEY", "cli-test-key-0123456789abcdef")
            .env("LAKESTAR_TEST_PAUSE_IN", "Mask")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let records = Path::new(&home).join("executions");
        loop {
            let entered = std::fs::read_dir(&records).ok().into_iter().flatten().flatten().any(|entry| {
                std::fs::read_to_string(entry.path()).is_ok_and(|text| text.contains("\"resume_state\": \"Mask\""))
            });
            if entered {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the run did not reach Mask");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let status =
            Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().expect("kill");
        assert!(status.success());
        let output = child.wait_with_output().expect("stopped");
        assert!(!output.status.success());

        let (code, stdout, _) = lakestar_with(&["executions", "--home", &home], &[]);
        assert_eq!(code, 0);
        assert!(stdout.contains(if expected == "Aborted" { "ABORTED" } else { "FAILED" }), "{signal}: {stdout}");
        let run = first_run(&home);
        let (_, history, _) = lakestar_with(&["history", &run, "--home", &home], &[]);
        assert!(history.contains(&format!("failed in Mask: {expected}")), "{signal}: {history}");
        let (code, stdout, stderr) = lakestar_with(&["redrive", "--all-failed", "--home", &home], &[]);
        assert_eq!(code, 0, "{signal}: {stdout}{stderr}");
        assert!(stdout.contains("SUCCEEDED") && stdout.contains("dim_customer: 6 new keys"), "{signal}: {stdout}");
    }
}

/// Issue 23.8: the lake through `lakestar serve` reads with pyarrow's S3 filesystem (dataset
/// discovery over Hive partitions) and boto3: a folder-like key answers 404, not 500.
#[test]
fn the_lake_reads_with_pyarrow_and_boto3_through_serve() {
    use std::io::BufRead;
    let home = tempfile::tempdir().expect("home");
    let home_text = home.path().to_string_lossy().into_owned();
    let (code, stdout, stderr) = lakestar(&["run", "examples/retail", "--home", &home_text]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lakestar"))
        .args(["serve", "--port", "0", "--check-port", "0", "--console-port", "0", "--home", &home_text])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("lakestar serve runs");
    let mut first = String::new();
    // Kept open while the server runs: it prints more lines.
    let mut output = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    output.read_line(&mut first).expect("a line");
    let endpoint = first.split_whitespace().nth(3).expect("the URL").to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/check_serve.py");
    let output = Command::new("python3")
        .args([script, &endpoint, "lakestar", "lakestar-local-secret"])
        .output()
        .expect("python3 runs (pip install pyarrow boto3)");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Issue 23.15 and 32.6: scan reads every format ingest reads (NDJSON, JSON, gzip among them)
/// and a file it cannot read fails the scan.
#[test]
fn scan_reads_every_format_ingest_reads_and_fails_on_a_file_it_cannot_read() {
    let dir = tempfile::tempdir().expect("folder");
    std::fs::write(dir.path().join("people.ndjson"), "{\"id\": 1, \"contact\": {\"email\": \"ann@example.com\"}}\n{\"id\": 2, \"contact\": {\"email\": \"bob@example.org\"}}\n").expect("write");
    let (code, stdout, _) = lakestar(&["scan", &dir.path().join("people.ndjson").to_string_lossy()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("column `contact_email`: 2 value(s) look like email"), "{stdout}");
    assert!(!stdout.contains("ann@"), "{stdout}");

    let mut gzipped = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gzipped, b"[{\"card\": \"4111 1111 1111 1111\"}]").expect("gzip");
    std::fs::write(dir.path().join("cards.json.gz"), gzipped.finish().expect("gzip")).expect("write");
    let (code, stdout, _) = lakestar(&["scan", &dir.path().join("cards.json.gz").to_string_lossy()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("column `card`: 1 value(s) look like card_number"), "{stdout}");

    std::fs::write(dir.path().join("broken.parquet"), b"PAR1 not really").expect("write");
    let (code, stdout, stderr) = lakestar(&["scan", &dir.path().join("broken.parquet").to_string_lossy()]);
    assert_eq!(code, 2, "an unreadable file fails the check: {stdout}{stderr}");
    assert!(stderr.contains("broken.parquet: cannot be scanned"), "{stderr}");
}

/// Issue 27: `lakestar validate` checks one file as a run would, without a home, lake or
/// warehouse: counts and rejects per rule, the first rejected rows by line (values only when
/// asked for), the gate's verdict as the exit code (0 pass, 1 fail, 2 unreadable), and JSON.
#[test]
fn validate_checks_a_file_without_loading_it_and_answers_with_the_gate_as_exit_code() {
    let dir = example_with(&["2024-01-01/sales.csv", "2024-01-02/sales.csv.gz"]);
    let sales = dir.path().join("landing/2024-01-01/sales.csv");
    let sales_text = sales.to_string_lossy().into_owned();
    let (code, stdout, stderr) = lakestar_with(&["validate", &sales_text], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("dataset sales (csv)") && stdout.contains("11 received, 6 valid, 5 rejected"), "{stdout}");
    assert!(stdout.contains("line 7: quantity:min(1)") && stdout.contains("quality gate: pass"), "{stdout}");
    assert!(!stdout.contains("4111") && !stdout.contains("O0000"), "no values unless asked for: {stdout}");
    // The example's DQDL warning is reported; the gate still passes.
    assert!(
        stdout.contains(
            "warn rule ColumnValues \"channel\" = \"store\" with threshold > 0.9 (failed): 7 of 11 row(s) passed"
        ),
        "{stdout}"
    );
    assert!(!dir.path().join(".lakestar").exists(), "nothing written");
    // A file with drift: the report names the column; no warning says it again.
    let stores = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/retail/landing/2024-01-01/stores.json");
    let (code, stdout, stderr) = lakestar_with(&["validate", stores], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("does not declare (kept in raw): tags"), "{stdout}");
    assert!(!stderr.contains("WARN"), "{stderr}");

    let (code, stdout, _) = lakestar_with(&["validate", &sales_text, "--json", "--show-values", "--rows", "2"], &[]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!((report["received"].as_u64(), report["valid"].as_u64()), (Some(11), Some(6)), "{report}");
    assert_eq!(report["rejects_per_rule"]["duplicate"], 1);
    assert_eq!(report["warnings"].as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(report["rules"].as_array().map(Vec::len), Some(4), "{report}");
    let rows = report["rejected_rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0]["line"].as_i64(), rows[0]["reasons"][0].as_str()), (Some(6), Some("ship_after_sale")));
    assert!(rows[0]["values"]["order_id"].is_string(), "values when asked for: {report}");

    // A row that could not be parsed is listed with its raw text; a gzip file is read as such.
    let gzip = dir.path().join("landing/2024-01-02/sales.csv.gz");
    let (code, stdout, _) = lakestar_with(&["validate", &gzip.to_string_lossy(), "--json", "--show-values"], &[]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(report["gzip"], true);
    let parse = report["rejected_rows"].as_array().expect("rows").iter().find(|row| row["values"]["_raw"].is_string());
    assert!(parse.is_some_and(|row| row["reasons"][0].as_str().is_some_and(|reason| reason.starts_with("parse"))));

    // A stricter gate fails: exit code 1, with the cause.
    let strict = std::fs::read_to_string(dir.path().join("pipeline.toml"))
        .expect("contract")
        .replace("max_reject_ratio = 0.5\nmin_rows = 1", "max_reject_ratio = 0.1\nmin_rows = 1");
    std::fs::write(dir.path().join("strict.toml"), strict).expect("strict contract");
    let strict = dir.path().join("strict.toml").to_string_lossy().into_owned();
    let (code, stdout, _) = lakestar_with(&["validate", &sales_text, "--contract", &strict], &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("quality gate: FAIL") && stdout.contains("max_reject_ratio"), "{stdout}");

    // A file that is not the dataset's: exit code 2 and what to do; one no dataset matches:
    // the datasets to choose from.
    let other = dir.path().join("other.csv");
    std::fs::write(&other, "a,b\n1,2\n").expect("a file");
    let other = other.to_string_lossy().into_owned();
    let (code, _, stderr) = lakestar_with(&["validate", &other, "--dataset", "sales"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("required column") && stderr.contains("aliases"), "{stderr}");
    let (code, _, stderr) = lakestar_with(&["validate", &other], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--dataset NAME") && stderr.contains("customers, products, sales, stores"), "{stderr}");
}

/// The rejected lines `lakestar validate` reports for a file under a contract.
fn rejected_lines(file: &str, contract: &str) -> std::collections::BTreeSet<i64> {
    let (code, stdout, stderr) =
        lakestar_with(&["validate", file, "--contract", contract, "--json", "--rows", "100000"], &[]);
    assert!(code == 0 || code == 1, "{file}: {stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a report");
    report["rejected_rows"].as_array().expect("rows").iter().filter_map(|row| row["line"].as_i64()).collect()
}

/// Issue 27: `lakestar infer` drafts each of the example's datasets from its files; the
/// draft passes `lakestar check`, and run over the same files it quarantines no row the
/// example's own contract keeps (the files carry deliberately bad rows, which both may
/// reject).
#[test]
fn infer_drafts_a_contract_that_check_accepts_and_that_keeps_every_row_the_example_keeps() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/retail");
    let contract = format!("{example}/pipeline.toml");
    let out = tempfile::tempdir().expect("out");
    for (dataset, files) in [
        ("customers", vec!["2024-01-01/customers.csv", "2024-01-02/customers.csv", "2024-01-03/customers.csv"]),
        ("products", vec!["2024-01-01/products_erp.csv", "2024-01-02/products_shop.csv"]),
        ("stores", vec!["2024-01-01/stores.json", "2024-01-03/stores.json"]),
        ("sales", vec!["2024-01-01/sales.csv", "2024-01-02/sales.csv.gz"]),
    ] {
        let paths: Vec<String> = files.iter().map(|file| format!("{example}/landing/{file}")).collect();
        let draft = out.path().join(format!("{dataset}.toml")).to_string_lossy().into_owned();
        let mut args = vec!["infer"];
        args.extend(paths.iter().map(String::as_str));
        args.extend(["--dataset", dataset, "--out", &draft]);
        let (code, stdout, stderr) = lakestar_with(&args, &[]);
        assert_eq!(code, 0, "{dataset}: {stdout}{stderr}");
        assert!(stderr.contains(&format!("lakestar check {draft}")), "the next commands: {stderr}");
        let (code, stdout, stderr) = lakestar_with(&["check", &draft], &[]);
        assert_eq!(code, 0, "{dataset}: {stdout}{stderr}");
        let text = std::fs::read_to_string(&draft).expect("the draft");
        assert!(text.contains("rows read") && text.contains(" distinct"), "every guess says why: {text}");
        if dataset == "customers" || dataset == "products" {
            assert!(text.contains("CSV delimiters differ between the files"), "{text}");
        }
        for path in &paths {
            let by_draft = rejected_lines(path, &draft);
            let by_example = rejected_lines(path, &contract);
            assert!(
                by_draft.is_subset(&by_example),
                "{path}: the draft rejects lines {by_draft:?}, the example's contract {by_example:?}\n{text}"
            );
        }
        let (code, _, stderr) = lakestar_with(&args, &[]);
        assert_ne!(code, 0, "an existing draft is not overwritten");
        assert!(stderr.contains("--force"), "{stderr}");
    }
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/retail/landing/2024-01-01/customers.csv");
    let (code, stdout, _) = lakestar_with(&["infer", samples], &[]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("[datasets.customers]") && stdout.contains("pii = { method = \"email_hash\" }"),
        "{stdout}"
    );
}

/// `docs/onboarding.md`'s five commands, copied and run in a new folder (the editor left
/// out) on a clean sample: each succeeds, and the run loads the dataset.
#[test]
fn the_onboarding_commands_run_as_written() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/onboarding.md")).expect("the doc");
    let block = doc.split("```sh\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a shell block");
    let folder = tempfile::tempdir().expect("a folder");
    std::fs::create_dir_all(folder.path().join("exports")).expect("exports");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/retail/landing/2024-01-03/customers.csv");
    std::fs::copy(sample, folder.path().join("exports/customers.csv")).expect("a clean sample");
    let binaries = Path::new(env!("CARGO_BIN_EXE_lakestar")).parent().expect("the binary's folder");
    let path = format!("{}:{}", binaries.display(), std::env::var("PATH").unwrap_or_default());
    let lines: Vec<String> = block.lines().map(|line| line.replace("$EDITOR pipeline.toml && ", "")).collect();
    assert_eq!(lines.len(), 5, "five commands: {block}");
    for line in lines {
        let output = Command::new("bash")
            .args(["-c", &line])
            .current_dir(folder.path())
            .env("PATH", &path)
            .env("LAKESTAR_MASKING_KEY", "cli-test-key-0123456789abcdef")
            .output()
            .expect("bash runs");
        let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "`{line}` failed: {said}");
    }
    let database = folder.path().join("crm/.lakestar/warehouse.db");
    assert!(database.is_file(), "the run loaded the warehouse");
}

/// Issue 27: a long CSV is sampled from its start, not read whole, and the draft says so.
#[test]
fn infer_samples_the_start_of_a_long_file_and_says_how_much_it_read() {
    let folder = tempfile::tempdir().expect("a folder");
    let mut text = String::from("reading_id,sensor,taken_on,value\n");
    for row in 0..5_000 {
        text.push_str(&format!("R{row:06},S{},2024-03-{:02},{}.{:02}\n", row % 7, row % 28 + 1, row % 300, row % 100));
    }
    let file = folder.path().join("readings.csv");
    std::fs::write(&file, &text).expect("a file");
    let (code, stdout, stderr) = lakestar_with(&["infer", &file.to_string_lossy(), "--sample-rows", "100"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("the first 100 rows read (the first") && stdout.contains(" bytes)"), "{stdout}");
    assert!(stdout.contains("type = \"date\"") && stdout.contains("natural_key = [\"reading_id\"]"), "{stdout}");
}

/// Issue 27: `lakestar serve` answers the check API (`POST /check`) over HTTP with the check
/// function's handler: the same report as `lakestar validate --json`, and refusals with
/// their status.
#[tokio::test]
async fn serve_answers_the_check_api_as_validate_does() {
    use std::io::{BufRead, Read, Write};
    let home = tempfile::tempdir().expect("folder");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lakestar"))
        .args(["serve", "--port", "0", "--check-port", "0", "--console-port", "0", "--home"])
        .arg(home.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("lakestar serve runs");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut said = Vec::new();
    while said.len() < 5 {
        said.push(lines.next().expect("a line").expect("text"));
    }
    let endpoint = said[0].split_whitespace().nth(3).expect("the S3 URL").to_string();
    let check = said.iter().find(|line| line.starts_with("Check API at")).expect("the check API is announced");
    let check = check.split_whitespace().nth(3).expect("its URL").trim_start_matches("http://").to_string();
    let (address, path) = check.split_once('/').expect("host and path");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/retail");
    let client = lakestar::lake::EmbeddedS3::client_for(&endpoint);
    let contract = std::fs::read(format!("{example}/pipeline.toml")).expect("contract");
    client
        .put_object()
        .bucket("lakestar-lake")
        .key("config/pipeline.toml")
        .body(contract.into())
        .send()
        .await
        .expect("put");

    let post = |query: &str, body: &[u8]| {
        let mut stream = std::net::TcpStream::connect(address).expect("connected");
        let head = format!(
            "POST /{path}{query} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).expect("sent");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("an answer");
        let status: u16 = answer.split_whitespace().nth(1).and_then(|code| code.parse().ok()).expect("a status");
        let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
        (status, serde_json::from_str::<serde_json::Value>(&body).expect("JSON"))
    };
    let file = format!("{example}/landing/2024-01-01/sales.csv");
    let bytes = std::fs::read(&file).expect("sales");
    let (status, report) = post("?name=landing%2F2024-01-01%2Fsales.csv&rows=3", &bytes);
    assert_eq!(status, 200, "{report}");
    let (code, stdout, _) = lakestar_with(&["validate", &file, "--json", "--rows", "3"], &[]);
    assert_eq!(code, 0);
    let cli: serde_json::Value = serde_json::from_str(&stdout).expect("the CLI's report");
    assert_eq!(report, cli, "the API and the CLI report alike");
    let (status, refused) = post("", br#"{"key": "raw/sales/part.parquet"}"#);
    assert_eq!((status, refused["error"].as_str()), (403, Some("Forbidden")));
    let _ = child.kill();
    let _ = child.wait();
}

/// The sources example as its script runs it: a PostgreSQL table and the example's HTTP API
/// extracted and loaded in one `lakestar run`; the products first (sources run in name
/// order), bad rows quarantined; `lakestar extract` again finds nothing new; a changed row is
/// extracted alone.
#[test]
fn the_sources_example_extracts_a_table_and_an_api_in_one_run() {
    let home = tempfile::tempdir().expect("home");
    let database = format!("lakestar_example_{}", std::process::id());
    let home_arg = home.path().to_string_lossy().to_string();
    let output = Command::new("bash")
        .args(["examples/sources/run.sh", "--home", &home_arg])
        .env("LAKESTAR", env!("CARGO_BIN_EXE_lakestar"))
        .env("SHOP_DATABASE", &database)
        .env("LAKESTAR_MASKING_KEY", "cli-test-key-0123456789abcdef")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("the script runs");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("source catalog: 8 row(s) in 2 page(s) (2 written"), "{stderr}");
    assert!(stderr.contains("source shop: 12 row(s) in 3 page(s) (3 written"), "{stderr}");
    let catalog = stderr.find("source catalog").unwrap_or(usize::MAX);
    assert!(catalog < stderr.find("source shop").unwrap_or(0), "the products first: {stderr}");
    for line in stdout.lines().filter(|line| line.contains("page-0000")) {
        assert!(line.contains("SUCCEEDED"), "{line}");
    }
    assert_eq!(
        stdout.lines().filter(|line| line.contains("page-0000") && line.contains("SUCCEEDED")).count(),
        5,
        "{stdout}"
    );

    let warehouse = home.path().join("warehouse.db");
    let count = |sql: &str| -> String {
        let output = Command::new("python3")
            .args(["-c", "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])"])
            .arg(&warehouse)
            .arg(sql)
            .output()
            .expect("python3 runs");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    // Two orders are quarantined (an e-mail that is not one, a quantity of 0); one product
    // (category "toys"), whose order infers its member.
    assert_eq!(count("SELECT COUNT(*) FROM fact_orders"), "10");
    assert_eq!(count("SELECT COUNT(*) FROM dim_product WHERE is_inferred = 0"), "7");
    assert_eq!(count("SELECT CAST(amount AS TEXT) FROM fact_orders WHERE order_id = 1008"), "1234.56");

    let url = format!("postgres://postgres@127.0.0.1:5432/{database}");
    let env = [("SHOP_DATABASE_URL", url.as_str()), ("CATALOG_TOKEN", "example-token")];
    let api = Command::new("python3")
        .args(["examples/sources/api.py", "8765"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdout(std::process::Stdio::null())
        .env("CATALOG_TOKEN", "example-token")
        .spawn()
        .expect("the API runs");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _api = Kill(api);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", 8765)).is_err() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (code, _, stderr) = lakestar_with(&["extract", "--home", &home_arg], &env);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("source catalog: nothing new") && stderr.contains("source shop: nothing new"), "{stderr}");

    let psql = Command::new("psql")
        .args([&url, "-q", "-c", "UPDATE orders SET quantity = 5, updated_at = now() WHERE order_id = 1001"])
        .status()
        .expect("psql runs");
    assert!(psql.success());
    let (code, stdout, stderr) = lakestar_with(&["extract", "shop", "--home", &home_arg], &env);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    // The changed order, and the last one again: within the source's five-minute lookback.
    assert!(stderr.contains("source shop: 2 row(s) in 1 page(s)"), "{stderr}");
    assert_eq!(count("SELECT quantity FROM fact_orders WHERE order_id = 1001"), "5");
    let _ = Command::new("psql")
        .args([
            "postgres://postgres@127.0.0.1:5432/postgres",
            "-q",
            "-c",
            &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        ])
        .status();
}

/// Issue 26: `lakestar quality` after the retail example, and the warehouse query
/// docs/quality.md documents, answering the same per run.
#[test]
fn quality_over_time_is_printed_and_the_documented_query_answers_the_same() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail");
    let home = tempfile::tempdir().expect("home");
    let home_text = home.path().to_string_lossy().into_owned();
    let (code, stdout, stderr) = lakestar(&["run", &example.to_string_lossy(), "--home", &home_text]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // The run summary names the warning under each sales run.
    assert!(stdout.contains("SUCCEEDED_WITH_WARNINGS"), "{stdout}");
    assert!(
        stdout.contains("warning: ColumnValues \"channel\" = \"store\" with threshold > 0.9: 7 of 11 row(s) passed"),
        "{stdout}"
    );

    let (code, table, stderr) = lakestar(&["quality", "--home", &home_text]);
    assert_eq!(code, 0, "{table}{stderr}");
    // (run, status, rows, valid, failed, warned, drift) of each run, from the printed table.
    let printed: Vec<(String, String, String, String, String, String, String)> = table
        .lines()
        .skip(1)
        .filter(|line| !line.starts_with("    "))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = |index: usize| fields[index].to_string();
            (at(3), at(4), at(5), at(6), at(8), at(9), at(10))
        })
        .collect();
    assert_eq!(printed.len(), 9, "{table}");
    let sales: Vec<_> = printed.iter().filter(|row| row.0.starts_with("sales-")).collect();
    assert_eq!(sales.len(), 2, "{table}");
    for row in &sales {
        assert_eq!((row.1.as_str(), row.5.as_str()), ("SUCCEEDED_WITH_WARNINGS", "1"), "{table}");
    }
    assert!(table.contains("    warned: ColumnValues \"channel\" = \"store\" with threshold > 0.9"), "{table}");
    assert!(table.contains("    drift: columns the contract does not know: tags"), "{table}");
    let (_, only_sales, _) = lakestar(&["quality", "sales", "--home", &home_text]);
    assert_eq!(only_sales.lines().filter(|line| line.contains(" sales ")).count(), 2, "{only_sales}");

    // The documented query, as written in docs/quality.md.
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/quality.md")).expect("docs");
    let after = docs.split("<!-- quality-over-time -->").nth(1).expect("the marked query");
    let query = after.split("```sql").nth(1).and_then(|rest| rest.split("```").next()).expect("a sql block");
    let output = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\nfor row in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]): print('|'.join(str(v) for v in row))",
        ])
        .arg(home.path().join("warehouse.db"))
        .arg(query)
        .output()
        .expect("python3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answered: Vec<(String, String, String, String, String, String)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('|').collect();
            let number = |index: usize| fields[index].trim_end_matches(".0").to_string();
            (fields[0].to_string(), number(3), number(4), number(6), number(7), number(8))
        })
        .collect();
    let mut from_table: Vec<_> = printed
        .iter()
        .map(|row| (row.0.clone(), row.2.clone(), row.3.clone(), row.4.clone(), row.5.clone(), row.6.clone()))
        .collect();
    let mut answered_sorted = answered.clone();
    from_table.sort();
    answered_sorted.sort();
    assert_eq!(answered_sorted, from_table);
}

/// Issue 30: `lakestar serve` prints the console's address on a line of its own; another
/// address than the loopback needs `--bind` and is warned of; a home with no run yet still
/// gets a console, which says what it cannot do.
#[test]
fn serve_prints_the_console_and_warns_of_another_address() {
    use std::io::{BufRead, Read, Write};
    let serve = |home: &str, bind: &str| -> (Vec<String>, std::process::Child) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lakestar"))
            .args(["serve", "--port", "0", "--check-port", "0", "--console-port", "0", "--bind", bind, "--home", home])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("lakestar serve runs");
        let output = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let lines: Vec<String> =
            output.lines().map_while(Result::ok).take_while(|line| !line.starts_with("Press Ctrl-C")).collect();
        (lines, child)
    };
    let page = |port: &str| -> String {
        let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("the console answers");
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("sent");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
    };
    let port_of = |line: &str| line.rsplit(':').next().unwrap_or_default().trim_end_matches('/').to_string();

    let home = tempfile::tempdir().expect("home");
    let home_text = home.path().to_string_lossy().into_owned();
    let (code, stdout, stderr) = lakestar(&["run", "examples/retail", "--home", &home_text]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (lines, mut child) = serve(&home_text, "127.0.0.1");
    let console = lines.iter().find(|line| line.starts_with("Console: http://")).expect("the console's line");
    assert!(console.starts_with("Console: http://127.0.0.1:"), "{lines:?}");
    assert!(!lines.iter().any(|line| line.starts_with("Warning")), "{lines:?}");
    let answer = page(&port_of(console));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("data-status=\"SUCCEEDED"), "the runs are listed");
    let _ = child.kill();
    let _ = child.wait();

    // Everywhere: a warning on its own line; and a home no run used: a console that says so.
    let bare = tempfile::tempdir().expect("home");
    let (lines, mut child) = serve(&bare.path().to_string_lossy(), "0.0.0.0");
    let console = lines.iter().find(|line| line.starts_with("Console: http://0.0.0.0:")).expect("the console's line");
    assert!(lines.iter().any(|line| line.starts_with("Warning: the console listens on 0.0.0.0")), "{lines:?}");
    assert!(lines.iter().any(|line| line.contains("no contract")), "{lines:?}");
    let answer = page(&port_of(console));
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("No executions under"), "{answer}");
    let _ = child.kill();
    let _ = child.wait();
}
