//! The extract function's real binary behind the Lambda Runtime API protocol, with the
//! embedded S3 as its lake bucket and a PostgreSQL table as its source: a scheduled input
//! (`{"due": true}`) extracts what is due, a source's `every` makes the next one not due, a
//! forced one finds nothing new, the pages land under `landing/`, and bad inputs are named
//! errors.

use std::time::Duration;

use lakestar::function::runtime_api::{Reported, RuntimeApi};
use lakestar::lake::{EmbeddedS3, Lake};
use serde_json::{Value, json};
use sqlx::Connection;

const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn contract(url: &str) -> String {
    format!(
        r#"
[datasets.orders]
match = ["landing/shop/**/*.ndjson.gz"]
[datasets.orders.table]
name = "fact_orders"
kind = "fact"
natural_key = ["order_id"]
[[datasets.orders.columns]]
name = "order_id"
type = "integer"

[sources.shop]
kind = "postgres"
dataset = "orders"
url = "{url}"
table = "orders"
page_size = 2
every = "1h"
cursor = {{ column = "order_id", type = "integer" }}
"#
    )
}

async fn invoke(s3: &EmbeddedS3, events: Vec<Value>) -> Vec<Reported> {
    let api = RuntimeApi::start().await.expect("runtime API");
    let count = events.len();
    for event in events {
        api.push(event);
    }
    let (access, secret) = s3.credentials();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lakestar-extract"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "lakestar-extract")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("LAKE_BUCKET", "lakestar-lake")
        .env("AWS_ENDPOINT_URL_S3", s3.endpoint())
        .env("LAKESTAR_S3_PATH_STYLE", "true")
        .env("AWS_ACCESS_KEY_ID", access)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .spawn()
        .expect("the function starts");
    let reported = api.wait_for(count, Duration::from_secs(60)).await;
    let _ = child.kill();
    let _ = child.wait();
    reported
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_invocations_extract_what_is_due_into_landing() {
    let name = format!("lakestar_extract_fn_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(ADMIN).await.expect("PostgreSQL on 127.0.0.1:5432");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
        .execute(&mut admin)
        .await
        .expect("drop");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.expect("create");
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let mut source = sqlx::PgConnection::connect(&url).await.expect("the source");
    sqlx::raw_sql("CREATE TABLE orders (order_id bigint PRIMARY KEY, note text); INSERT INTO orders SELECT i, 'n' || i FROM generate_series(1, 5) i")
        .execute(&mut source)
        .await
        .expect("a table");

    let folder = tempfile::tempdir().expect("folder");
    let s3 = EmbeddedS3::start(&folder.path().join("s3")).await.expect("embedded S3");
    s3.create_bucket("lakestar-lake").await.expect("bucket");
    let lake = Lake::new(s3.client(), "lakestar-lake");
    lake.put_bytes(lakestar::lake::CONFIG_KEY, contract(&url).into_bytes(), "application/toml")
        .await
        .expect("contract");

    let reported = invoke(
        &s3,
        vec![
            json!({"due": true}),
            json!({"due": true}),
            json!({"sources": ["shop"], "due": false}),
            json!({"sources": ["nope"]}),
            json!({"bogus": 1}),
        ],
    )
    .await;
    let body = |index: usize| match &reported[index] {
        Reported::Response { body, .. } => body["extractions"][0].clone(),
        other => panic!("invocation {index}: a response, not {other:?}"),
    };
    assert_eq!((body(0)["outcome"].as_str(), body(0)["rows"].as_u64()), (Some("extracted"), Some(5)));
    assert_eq!(body(0)["pages"].as_array().map(Vec::len), Some(3));
    assert_eq!(body(0)["to"], "5");
    assert_eq!(body(1)["outcome"], "not_due", "its `every` has not passed");
    assert_eq!(body(2)["outcome"], "nothing_new");
    for index in [3, 4] {
        match &reported[index] {
            Reported::Error { body, .. } => assert_eq!(body["errorType"], "InvalidInput", "{body}"),
            other => panic!("invocation {index}: an error, not {other:?}"),
        }
    }
    let landed = lake.list("landing/shop/").await.expect("listed");
    assert_eq!(landed.len(), 3, "{landed:?}");
    let state: Value =
        serde_json::from_slice(&lake.get_bytes("state/sources/shop.json").await.expect("state")).expect("JSON");
    assert_eq!((state["watermark"].as_str(), state["pending"].is_null()), (Some("5"), true));

    drop(source);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await
        .expect("drop");
}
