//! Reproductions of what a new user ran into (issue 23): each test drives the offline stack
//! with a contract and files of its own, as a user would, and fails on the old behaviour.

mod common;

use common::{drop_and_run, query_text, stack_with, succeeded};

const EVENTS: &str = r#"
[datasets.accounts]
match = ["landing/accounts*.csv"]
[datasets.accounts.table]
name = "dim_account"
kind = "dimension"
natural_key = ["account_id"]
effective_from = "changed_at"
[[datasets.accounts.columns]]
name = "account_id"
required = true
[[datasets.accounts.columns]]
name = "tier"
scd = 2
[[datasets.accounts.columns]]
name = "changed_at"
type = "EFFECTIVE_TYPE"

[datasets.events]
match = ["landing/events*.csv"]
[datasets.events.table]
name = "fact_event"
kind = "fact"
natural_key = ["event_id"]
date_column = "occurred"
partition = "PARTITION"
references = [{ dimension = "dim_account", columns = ["account_id"] }]
[[datasets.events.columns]]
name = "event_id"
required = true
[[datasets.events.columns]]
name = "account_id"
[[datasets.events.columns]]
name = "occurred"
type = "DATE_TYPE"
required = true
"#;

/// Issue 23.1: a fact's `date_column` (and a dimension's `effective_from`) may be a date or a
/// timestamp, partitioned by day or by month.
#[tokio::test]
async fn a_date_column_of_every_allowed_type_partitions_by_day_and_month_and_loads() {
    for date_type in ["date", "timestamp"] {
        for partition in ["day", "month"] {
            for effective_type in ["date", "timestamp"] {
                let folder = tempfile::tempdir().expect("folder");
                let contract = EVENTS
                    .replace("DATE_TYPE", date_type)
                    .replace("PARTITION", partition)
                    .replace("EFFECTIVE_TYPE", effective_type);
                let stack = stack_with(folder.path(), &contract).await;
                let changed = if effective_type == "date" { "2024-01-01" } else { "2024-01-01T00:00:00Z" };
                let accounts = format!("account_id,tier,changed_at\nA1,gold,{changed}\n");
                succeeded(&drop_and_run(&stack, folder.path(), "landing/accounts.csv", accounts.as_bytes()).await);
                let events = match date_type {
                    "date" => "event_id,account_id,occurred\nE1,A1,2024-03-15\nE2,A1,2024-04-01\n",
                    _ => "event_id,account_id,occurred\nE1,A1,2024-03-15T10:00:00Z\nE2,A1,2024-04-01T23:59:59+02:00\n",
                };
                let records = drop_and_run(&stack, folder.path(), "landing/events.csv", events.as_bytes()).await;
                succeeded(&records);
                let what = format!("{date_type} by {partition}, effective_from a {effective_type}");
                let keys = stack.lake().list("curated/fact_event/").await.expect("list");
                let folders: Vec<&str> = keys.iter().filter_map(|key| key.split('/').nth(2)).collect();
                let expected: Vec<&str> = match partition {
                    "day" => vec!["occurred=2024-03-15", "occurred=2024-04-01"],
                    _ => vec!["occurred_month=2024-03", "occurred_month=2024-04"],
                };
                assert_eq!(folders, expected, "{what}");
                let loaded = query_text(
                    stack.warehouse(),
                    "SELECT CAST(COUNT(*) AS TEXT) FROM fact_event f JOIN dim_account a ON a.account_key = f.account_key",
                )
                .await;
                assert_eq!(loaded, [vec![Some("2".to_string())]], "{what}");
            }
        }
    }
}

const HR: &str = r#"
[datasets.employees]
match = ["landing/**/employees*.csv"]
[datasets.employees.table]
name = "dim_employee"
kind = "dimension"
natural_key = ["employee_id"]
effective_from = "effective"
[[datasets.employees.columns]]
name = "employee_id"
required = true
[[datasets.employees.columns]]
name = "grade"
scd = 2
[[datasets.employees.columns]]
name = "effective"
type = "date"

[datasets.timesheets]
match = ["landing/**/timesheets*.ndjson"]
[datasets.timesheets.table]
name = "fact_timesheet"
kind = "fact"
natural_key = ["entry_id"]
date_column = "worked_on"
references = [{ dimension = "dim_employee", columns = ["employee_id"] }]
[[datasets.timesheets.columns]]
name = "entry_id"
required = true
[[datasets.timesheets.columns]]
name = "employee_id"
[[datasets.timesheets.columns]]
name = "worked_on"
type = "date"
[[datasets.timesheets.columns]]
name = "hours"
type = "decimal(5,2)"
"#;

/// The grade each timesheet entry's employee key points at.
async fn grades(stack: &lakestar_local::stack::Stack) -> Vec<Vec<Option<String>>> {
    query_text(
        stack.warehouse(),
        "SELECT t.entry_id, e.grade FROM fact_timesheet t JOIN dim_employee e ON e.employee_key = t.employee_key ORDER BY t.entry_id",
    )
    .await
}

/// Issue 23.2: a back-dated dimension change moves the facts loaded before it to the version
/// in effect at their date, in the same transaction, and says how many.
async fn back_dated_changes_rekey_the_facts(warehouse: Option<String>) {
    let folder = tempfile::tempdir().expect("folder");
    let stack = common::stack_on(folder.path(), HR, warehouse).await;
    let employees = b"employee_id,grade,effective\nE1,junior,2024-01-01\nE2,senior,2024-01-01\n";
    succeeded(&drop_and_run(&stack, folder.path(), "landing/2024-06-01/employees.csv", employees).await);
    let entries = concat!(
        "{\"entry_id\": \"T1\", \"employee_id\": \"E1\", \"worked_on\": \"2024-01-15\", \"hours\": \"7.50\"}\n",
        "{\"entry_id\": \"T2\", \"employee_id\": \"E1\", \"worked_on\": \"2024-03-15\", \"hours\": \"8.00\"}\n",
        "{\"entry_id\": \"T3\", \"employee_id\": \"E2\", \"worked_on\": \"2024-03-15\", \"hours\": \"6.25\"}\n",
    );
    succeeded(&drop_and_run(&stack, folder.path(), "landing/2024-06-01/timesheets.ndjson", entries.as_bytes()).await);
    let text = |value: &str| Some(value.to_string());
    assert_eq!(
        grades(&stack).await,
        [vec![text("T1"), text("junior")], vec![text("T2"), text("junior")], vec![text("T3"), text("senior")]]
    );

    // E1 was promoted on 2024-02-01; the change arrives later. T2 (2024-03-15) is now a
    // senior's entry, T1 (2024-01-15) still a junior's.
    let change = b"employee_id,grade,effective\nE1,senior,2024-02-01\n";
    let records = drop_and_run(&stack, folder.path(), "landing/2024-06-02/employees_fixes.csv", change).await;
    succeeded(&records);
    assert_eq!(
        grades(&stack).await,
        [vec![text("T1"), text("junior")], vec![text("T2"), text("senior")], vec![text("T3"), text("senior")]]
    );
    let load = &records[0].output.as_ref().expect("output")["load"]["tables"];
    assert_eq!(load["fact_timesheet"]["rekeyed"], 1, "{load}");

    // Slotted below a later version: E1 becomes lead on 2024-03-01, then a correction says
    // E1 was already senior on 2024-01-10: T1 moves, T2 follows the lead version.
    succeeded(
        &drop_and_run(
            &stack,
            folder.path(),
            "landing/2024-06-03/employees.csv",
            b"employee_id,grade,effective\nE1,lead,2024-03-01\n",
        )
        .await,
    );
    succeeded(
        &drop_and_run(
            &stack,
            folder.path(),
            "landing/2024-06-04/employees.csv",
            b"employee_id,grade,effective\nE1,senior,2024-01-10\n",
        )
        .await,
    );
    assert_eq!(
        grades(&stack).await,
        [vec![text("T1"), text("senior")], vec![text("T2"), text("lead")], vec![text("T3"), text("senior")]]
    );
}

#[tokio::test]
async fn sqlite_back_dated_changes_rekey_the_facts() {
    back_dated_changes_rekey_the_facts(None).await;
}

#[tokio::test]
async fn postgres_back_dated_changes_rekey_the_facts() {
    let (database, url) = common::PostgresDatabase::create().await;
    back_dated_changes_rekey_the_facts(Some(url)).await;
    database.drop_database_by_name().await;
}

/// Issue 23.7: decimals sort and add as numbers in SQLite, and stay exact in the lake and in
/// PostgreSQL.
#[tokio::test]
async fn decimals_sort_and_add_as_numbers_in_sqlite_and_stay_exact_in_postgresql() {
    const SALARIES: &str = r#"
[datasets.staff]
match = ["landing/staff*.csv"]
[datasets.staff.table]
name = "dim_staff"
kind = "dimension"
natural_key = ["staff_id"]
[[datasets.staff.columns]]
name = "staff_id"
[[datasets.staff.columns]]
name = "salary"
type = "decimal(12,2)"
"#;
    let file = b"staff_id,salary\nS1,9000.50\nS2,10000.00\nS3,850.25\n";
    let folder = tempfile::tempdir().expect("folder");
    let stack = stack_with(folder.path(), SALARIES).await;
    succeeded(&drop_and_run(&stack, folder.path(), "landing/staff.csv", file).await);
    let kinds = query_text(stack.warehouse(), "SELECT DISTINCT typeof(salary) FROM dim_staff ORDER BY 1").await;
    assert_eq!(kinds, [vec![Some("integer".to_string())], vec![Some("real".to_string())]], "numbers, not text");
    let ordered = query_text(stack.warehouse(), "SELECT staff_id FROM dim_staff ORDER BY salary").await;
    assert_eq!(ordered.concat(), [Some("S3".to_string()), Some("S1".to_string()), Some("S2".to_string())]);
    let total = query_text(stack.warehouse(), "SELECT CAST(SUM(salary) AS TEXT) FROM dim_staff").await;
    assert_eq!(total, [vec![Some("19850.75".to_string())]]);

    let (database, url) = common::PostgresDatabase::create().await;
    let folder = tempfile::tempdir().expect("folder");
    let stack = common::stack_on(folder.path(), SALARIES, Some(url)).await;
    succeeded(&drop_and_run(&stack, folder.path(), "landing/staff.csv", file).await);
    let exact =
        query_text(stack.warehouse(), "SELECT CAST(salary AS TEXT) FROM dim_staff ORDER BY dim_staff.salary").await;
    assert_eq!(exact.concat(), [Some("850.25".to_string()), Some("9000.50".to_string()), Some("10000.00".to_string())]);
    database.drop_database_by_name().await;
}

/// Issue 23.13: a truncated NDJSON line is reported at its line of the file; a date that
/// fails its format says which format was expected.
#[tokio::test]
async fn a_truncated_ndjson_line_names_its_file_line_and_a_bad_date_its_format() {
    const LOG: &str = r#"
[datasets.visits]
match = ["landing/visits*.ndjson"]
[datasets.visits.table]
name = "fact_visit"
kind = "fact"
natural_key = ["visit_id"]
[datasets.visits.quality]
max_reject_ratio = 1.0
[[datasets.visits.columns]]
name = "visit_id"
[[datasets.visits.columns]]
name = "day"
type = "date"
format = "%d.%m.%Y"
"#;
    let mut file = String::new();
    for line in 1..47 {
        file.push_str(&format!("{{\"visit_id\": \"V{line}\", \"day\": \"0{}.01.2024\"}}\n", line % 9 + 1));
    }
    file.push_str("{\"visit_id\": \"V47\", \"day\": \"2024-01-");
    let folder = tempfile::tempdir().expect("folder");
    let stack = stack_with(folder.path(), LOG).await;
    let records = drop_and_run(&stack, folder.path(), "landing/visits.ndjson", file.as_bytes()).await;
    succeeded(&records);
    let run = &records[0].name;
    let rejects =
        stack.lake().get_bytes(&format!("quarantine/visits/run={run}/ingest_rejected.csv")).await.expect("rejects");
    let text = String::from_utf8(rejects).expect("UTF-8");
    assert!(text.contains("at line 47 column") && text.contains("truncated line"), "{text}");

    let dates = drop_and_run(
        &stack,
        folder.path(),
        "landing/visits_2.ndjson",
        b"{\"visit_id\": \"W1\", \"day\": \"2024-01-05\"}\n",
    )
    .await;
    let state = dates[0].output.as_ref().expect("output");
    assert_eq!(state["validate"]["rejects_per_rule"]["day:type(date %d.%m.%Y)"], 1, "{}", state["validate"]);
}
