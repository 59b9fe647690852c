//! The console's pages and actions over HTTP, and in a real browser (Debian's chromium through
//! chromedriver and Selenium, installed by `.ci/run`): after the retail example ran with the
//! load failing on purpose, every page answers, a re-drive from the page resumes the run in
//! the execution store, and nothing a page shows comes from outside this machine.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::{KEY, example, lakestar};
use lakestar_local::console::{self, Console};
use lakestar_local::stack::{Stack, StackConfig};
use lakestar_local::store::{self, list_executions, load_execution};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer: status, headers (names in lower case), body.
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// One HTTP/1.1 request over a new connection.
async fn request(address: std::net::SocketAddr, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("the console answers");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    let payload = body.map_or(&[][..], |(_, bytes)| bytes);
    if let Some((content_type, bytes)) = body {
        head.push_str(&format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n", bytes.len()));
    } else if method == "POST" {
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("sent");
    stream.write_all(payload).await.expect("sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Answer { status, headers, body: body.to_string() }
}

async fn get(address: std::net::SocketAddr, path: &str) -> Answer {
    request(address, "GET", path, None).await
}

/// The execution once it no longer runs (the console's actions run in the background).
async fn settled(home: &Path, name: &str) -> store::ExecutionRecord {
    for _ in 0..600 {
        let record = load_execution(home, name).expect("the record");
        if record.status != store::RUNNING {
            return record;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{name} still runs after a minute");
}

/// The retail example run into `home` with the load failing on purpose (every execution
/// stops in Load), then the stack and its console over the same home on a free port.
async fn failed_example(home: &Path) -> (Arc<Console>, std::net::SocketAddr) {
    let home_text = home.display().to_string();
    let example = example();
    let (code, stdout, stderr) =
        lakestar(&["run", &example.display().to_string(), "--home", &home_text], &[("LAKESTAR_FAULT", "load")]);
    assert_ne!(code, 0, "the runs fail in Load: {stdout}{stderr}");
    let contract = example.join("pipeline.toml");
    let mut config = StackConfig::new(home, &contract);
    config.key = Some(lakestar::mask::MaskingKey::new(KEY.as_bytes().to_vec(), "v1").expect("the key"));
    config.timing = lakestar_local::stack::timing(0.0);
    let stack = Stack::open(config).await.expect("the stack");
    let lake = stack.lake().clone();
    let source = lakestar::function::ContractSource::S3 {
        lake: lake.clone(),
        key: lakestar::lake::CONFIG_KEY.to_string(),
        cached: Default::default(),
    };
    let check = lakestar::function::check::CheckFunction::new(lake, source);
    let console = Arc::new(Console::new(home.to_path_buf(), Some(stack), Some(check)).expect("the console"));
    let address = console::start(console.clone(), "127.0.0.1:0".parse().expect("an address")).await.expect("started");
    (console, address)
}

/// Every resource a page names is this console's: no `src`, no `href` or `action` elsewhere,
/// no `url(` or `@import`, and the browser is told to load nothing else.
fn assert_nothing_from_elsewhere(path: &str, answer: &Answer) {
    let policy = answer.headers.get("content-security-policy").map(String::as_str).unwrap_or("");
    assert!(policy.starts_with("default-src 'none'"), "{path}: {policy}");
    for outside in ["src=", "href=\"http", "href=\"//", "action=\"http", "@import", "<script", "<link"] {
        assert!(!answer.body.contains(outside), "{path} has {outside}");
    }
    // `url(#arrow)`: the SVG's own marker, in the page.
    assert_eq!(answer.body.matches("url(").count(), answer.body.matches("url(#").count(), "{path} names a url()");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_answers_and_the_actions_change_the_execution_store() {
    let folder = tempfile::tempdir().expect("folder");
    let home = folder.path().join("home");
    let (console, address) = failed_example(&home).await;
    let records = list_executions(&home).expect("executions");
    assert!(records.len() >= 4 && records.iter().all(|record| record.status == store::FAILED));

    // The list: every execution, its rows, and filters by status and dataset.
    let list = get(address, "/").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.headers.get("content-type").map(String::as_str), Some("text/html; charset=utf-8"));
    for record in &records {
        assert!(list.body.contains(&format!("href=\"/executions/{}\"", record.name)), "{} listed", record.name);
    }
    assert_eq!(list.body.matches("data-status=\"FAILED\"").count(), records.len());
    let sales: Vec<_> = records.iter().filter(|record| record.dataset() == "sales").collect();
    let only_sales = get(address, "/?dataset=sales").await;
    assert_eq!(only_sales.body.matches("<tr><td><span class=\"badge").count(), sales.len());
    let none_succeeded = get(address, "/?status=SUCCEEDED").await;
    assert_eq!(none_succeeded.body.matches("<tr><td><span class=\"badge").count(), 0);

    // One failed execution: the graph with Load failed and what came before succeeded, the
    // error with what to do, the actions, the outputs and the history.
    let failed = sales[0];
    let page = get(address, &format!("/executions/{}", failed.name)).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("data-state=\"Load\" data-visit=\"failed\""), "{}", page.body);
    assert!(page.body.contains("data-state=\"Mask\" data-visit=\"succeeded\""));
    assert!(page.body.contains("data-state=\"Done\" data-visit=\"not reached\""));
    assert!(page.body.contains("InjectedFault") && page.body.contains("What to do: re-drive"));
    assert!(page.body.contains(&format!("action=\"/executions/{}/redrive\"", failed.name)));
    assert!(page.body.contains("id=\"output-validate\"") && page.body.contains("id=\"history\""));

    // Re-drive: the run resumes in Load and succeeds; the store says so, once re-driven.
    let redriven = request(address, "POST", &format!("/executions/{}/redrive", failed.name), None).await;
    assert_eq!(redriven.status, 303);
    assert_eq!(redriven.headers.get("location"), Some(&format!("/executions/{}", failed.name)));
    let record = settled(&home, &failed.name).await;
    assert_eq!((record.status.as_str(), record.redrive_count), (store::SUCCEEDED, 1), "{:?}", record.cause);
    let page = get(address, &format!("/executions/{}", failed.name)).await;
    assert!(page.body.contains("data-state=\"Load\" data-visit=\"succeeded\""));
    assert!(page.body.contains("data-state=\"Done\" data-visit=\"succeeded\""));
    assert!(!page.body.contains("id=\"redrive\""), "no re-drive for a run that succeeded");
    // Re-driving it again is refused, saying why, and changes nothing.
    let again = request(address, "POST", &format!("/executions/{}/redrive", failed.name), None).await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("only a FAILED or ABORTED execution can be re-driven"), "{}", again.body);
    assert_eq!(load_execution(&home, &failed.name).expect("the record").redrive_count, 1);

    // Abandon another: ABANDONED in the store.
    let other = records.iter().find(|record| record.name != failed.name).expect("another run");
    let abandoned = request(address, "POST", &format!("/executions/{}/abandon", other.name), None).await;
    assert_eq!(abandoned.status, 303);
    assert_eq!(load_execution(&home, &other.name).expect("the record").status, store::ABANDONED);

    // Process again: a new run of the same file, run to its end, shown.
    let before = list_executions(&home).expect("executions").len();
    let reprocessed = request(address, "POST", &format!("/executions/{}/reprocess", failed.name), None).await;
    assert_eq!(reprocessed.status, 303);
    let after = list_executions(&home).expect("executions");
    assert_eq!(after.len(), before + 1);
    let new_run = reprocessed
        .headers
        .get("location")
        .and_then(|location| location.strip_prefix("/executions/"))
        .expect("the new run");
    assert_ne!(new_run, failed.name);
    let new_record = settled(&home, new_run).await;
    assert_eq!((new_record.key(), new_record.status.as_str()), (failed.key(), store::SUCCEEDED));

    // The quarantine: lines and reasons, values only when asked for.
    let (received, _, quarantined) = record.rows().expect("rows");
    assert!(quarantined > 0 && received > quarantined);
    let rows = get(address, &format!("/executions/{}/quarantine", failed.name)).await;
    assert_eq!(rows.status, 200);
    assert!(rows.body.contains(&format!("{quarantined} quarantined row(s)")), "{}", rows.body);
    assert_eq!(rows.body.matches("<tr><td><pre>").count() as u64, quarantined.min(50));
    assert!(rows.body.contains("id=\"show-values\"") && !rows.body.contains("card_number="));
    let with_values = get(address, &format!("/executions/{}/quarantine?values=1", failed.name)).await;
    assert!(with_values.body.contains("card_number="), "values shown when asked for");
    assert!(with_values.body.contains("they may be personal data"));

    // Quality: the chart's points are the reports' reject ratios; a run's detail.
    let reports = lakestar_local::reports::reports(&home, Some("sales")).expect("reports");
    assert!(!reports.is_empty());
    let quality = get(address, "/quality?dataset=sales").await;
    assert_eq!(quality.status, 200);
    for report in &reports {
        assert!(
            quality.body.contains(&format!("data-run=\"{}\" data-ratio=\"{:.6}\"", report.run, report.reject_ratio)),
            "{} at {}",
            report.run,
            report.reject_ratio
        );
    }
    for report in &reports {
        let warned = report.rules.iter().filter(|rule| rule.warned()).count();
        assert!(
            quality.body.contains(&format!("class=\"warned\" data-run=\"{}\" data-count=\"{warned}\"", report.run)),
            "{}: {warned} warned",
            report.run
        );
    }
    let detail = get(address, &format!("/quality?dataset=sales&run={}", reports[0].run)).await;
    assert_eq!(detail.status, 200);
    for rule in reports[0].rejects_per_rule.keys() {
        assert!(detail.body.contains(&lakestar_local::console::html::escape(rule)), "{rule}");
    }
    assert_eq!(get(address, "/quality?dataset=sales&run=nope").await.status, 404);

    // The warehouse: each table's rows as the warehouse counts them; a key's versions.
    let stack = console.stack().expect("the stack");
    let warehouse = get(address, "/warehouse").await;
    assert_eq!(warehouse.status, 200);
    assert!(warehouse.body.contains("dim_customer") && warehouse.body.contains("fact_sales"), "{}", warehouse.body);
    let database = home.join("warehouse.db");
    let tables = tokio::task::spawn_blocking(move || common::sqlite_tables(&database)).await.expect("the tables");
    let customers = tables.get("dim_customer").map_or(0, Vec::len);
    assert!(
        warehouse.body.contains(&format!("<td>dim_customer</td><td>dimension</td><td class=\"n\">{customers}</td>")),
        "{}",
        warehouse.body
    );
    let history = get(address, "/warehouse/dim_customer?key=C1001").await;
    assert_eq!(history.status, 200);
    assert!(history.body.contains("version(s) of dim_customer C1001") && history.body.contains("id=\"timeline\""));
    assert_eq!(get(address, "/warehouse/fact_sales?key=1").await.status, 404);
    assert!(stack.contract_tables().iter().any(|table| table == "dim_customer"));

    // Check a file: the form, and an upload's report as the check function makes it.
    let form = get(address, "/check").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("enctype=\"multipart/form-data\""));
    let csv = std::fs::read(example().join("landing/2024-01-01/sales.csv")).expect("the example's sales");
    let mut upload = b"--B0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"sales.csv\"\r\nContent-Type: text/csv\r\n\r\n".to_vec();
    upload.extend_from_slice(&csv);
    upload.extend_from_slice(b"\r\n--B0undary--\r\n");
    let checked = request(address, "POST", "/check", Some(("multipart/form-data; boundary=B0undary", &upload))).await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    let first_sales = records.iter().find(|record| record.key() == "landing/2024-01-01/sales.csv").expect("the run");
    let (_, valid, rejected) = first_sales.rows().expect("rows");
    assert!(
        checked.body.contains(&format!(
            "<span id=\"valid\">{valid}</span> valid, <span id=\"rejected\">{rejected}</span> rejected"
        )),
        "{}",
        checked.body
    );
    let empty =
        request(address, "POST", "/check", Some(("multipart/form-data; boundary=B0undary", b"--B0undary--\r\n"))).await;
    assert_eq!(empty.status, 400);

    // Pages that are not, and methods the console does not answer.
    assert_eq!(get(address, "/executions/nope").await.status, 404);
    assert_eq!(get(address, "/nothing/here").await.status, 404);
    assert_eq!(request(address, "POST", "/executions/nope/redrive", None).await.status, 409);
    assert_eq!(request(address, "DELETE", "/", None).await.status, 405);

    // Nothing from outside, on every page.
    for path in [
        "/".to_string(),
        format!("/executions/{}", failed.name),
        format!("/executions/{}/quarantine?values=1", failed.name),
        "/quality?dataset=sales".to_string(),
        format!("/quality?dataset=sales&run={}", reports[0].run),
        "/warehouse".to_string(),
        "/warehouse/dim_customer?key=C1001".to_string(),
        "/check".to_string(),
    ] {
        let answer = get(address, &path).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_nothing_from_elsewhere(&path, &answer);
    }
}

/// The pages in Debian's chromium: the list, a failed execution, Re-drive pressed and the run
/// succeeding, the quality chart's reject ratio, a file checked. Screenshots go to
/// `<target>/tmp/console-screenshots/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let folder = tempfile::tempdir().expect("folder");
    let home = folder.path().join("home");
    let (_console, address) = failed_example(&home).await;
    let failed = list_executions(&home)
        .expect("executions")
        .into_iter()
        .find(|record| record.key() == "landing/2024-01-01/sales.csv")
        .expect("the first sales run");
    let (received, _, rejected) = failed.rows().expect("rows");
    let ratio = rejected as f64 / received as f64;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots).expect("the screenshots' folder");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console_browser.py");
    let upload = std::fs::canonicalize(example().join("landing/2024-01-01/sales.csv")).expect("the example's sales");
    let output = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(format!("http://{address}"))
        .arg(&failed.name)
        .arg(format!("{ratio:.6}"))
        .arg(&upload)
        .arg(&shots)
        .output()
        .await
        .expect("python3 runs (selenium, chromium and chromium-driver are installed by .ci/run)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser session failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let record = settled(&home, &failed.name).await;
    assert_eq!((record.status.as_str(), record.redrive_count), (store::SUCCEEDED, 1), "the click re-drove it");
    for shot in ["executions.png", "failed.png", "redriven.png", "quality.png", "check.png"] {
        assert!(shots.join(shot).metadata().is_ok_and(|metadata| metadata.len() > 1000), "{shot} saved");
    }
}

/// The warehouse pages over PostgreSQL: its counts, and a key's versions with PostgreSQL's
/// text of instants and booleans on the timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warehouse_pages_read_postgresql() {
    let database = tokio::task::spawn_blocking(common::PostgresDatabase::create).await.expect("a database");
    let folder = tempfile::tempdir().expect("folder");
    let home = folder.path().join("home");
    let home_text = home.display().to_string();
    let (code, stdout, stderr) =
        lakestar(&["run", &example().display().to_string(), "--home", &home_text, "--warehouse", &database.url], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mut config = StackConfig::new(&home, example().join("pipeline.toml"));
    config.key = Some(lakestar::mask::MaskingKey::new(KEY.as_bytes().to_vec(), "v1").expect("the key"));
    let stack = Stack::open(config).await.expect("the stack");
    assert!(stack.warehouse_url().starts_with("postgres://"), "the home remembers its warehouse");
    let console = Arc::new(Console::new(home.clone(), Some(stack), None).expect("the console"));
    let address = console::start(console, "127.0.0.1:0".parse().expect("an address")).await.expect("started");

    let url = database.url.clone();
    let tables = tokio::task::spawn_blocking(move || common::postgres_tables(&url)).await.expect("the tables");
    let page = get(address, "/warehouse").await;
    assert_eq!(page.status, 200);
    for (table, kind) in [("dim_customer", "dimension"), ("fact_sales", "fact")] {
        let rows = tables.get(table).map_or(0, Vec::len);
        assert!(
            page.body.contains(&format!("<td>{table}</td><td>{kind}</td><td class=\"n\">{rows}</td>")),
            "{table}: {}",
            page.body
        );
    }
    // C1002 changed segment on the second day: two versions, the later one current.
    let history = get(address, "/warehouse/dim_customer?key=C1002").await;
    assert_eq!(history.status, 200);
    assert!(history.body.contains("2 version(s) of dim_customer C1002"), "{}", history.body);
    assert_eq!(history.body.matches("class=\"version\" data-current=\"true\"").count(), 1);
    assert_eq!(history.body.matches("class=\"version\" data-current=\"false\"").count(), 1);
    assert!(history.body.contains("segment=business") && history.body.contains("segment=consumer"));
    // Dropping it drops the database, which blocks: off the runtime's threads.
    tokio::task::spawn_blocking(move || drop(database)).await.expect("dropped");
}
