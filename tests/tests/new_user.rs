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
