//! The extraction benchmark: a generated orders table in a scratch PostgreSQL database,
//! extracted by Lakestar (gzip NDJSON pages into the embedded S3, the cursor's incremental
//! plan and the full one) next to `COPY (SELECT …) TO STDOUT` of the same rows, the anchor:
//! rows/s of each and Lakestar's share of COPY's speed, each the median of its rounds, run
//! alternately.

use std::time::Instant;

use anyhow::Context;
use futures_util::StreamExt;
use lakestar::contract::Contract;
use lakestar::extract::{Extractor, Options};
use lakestar::lake::{EmbeddedS3, Lake};
use sqlx::{Connection, PgConnection};

/// What to measure.
pub struct ExtractBench {
    /// Rows in the table.
    pub rows: u64,
    /// Rows per page.
    pub page_size: usize,
    /// Rounds of each.
    pub rounds: usize,
    /// A server URL that may create and drop a scratch database.
    pub admin_url: String,
}

const CONTRACT: &str = r#"
[datasets.orders]
match = ["landing/shop/**/*.ndjson.gz", "landing/whole/**/*.ndjson.gz"]
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
url = "URL"
table = "orders"
page_size = PAGE
cursor = { column = "updated_at", type = "timestamp" }

[sources.whole]
kind = "postgres"
dataset = "orders"
url = "URL"
table = "orders"
page_size = PAGE
"#;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs the benchmark; returns its figures as text.
pub async fn bench(options: ExtractBench) -> anyhow::Result<String> {
    let name = format!("lakestar_bench_extract_{}", std::process::id());
    let mut admin = PgConnection::connect(&options.admin_url).await.context("the PostgreSQL server")?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&mut admin).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
    let url =
        format!("{}/{name}", options.admin_url.rsplit_once('/').map_or(options.admin_url.as_str(), |(base, _)| base));
    let result = run(&options, &url).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await?;
    result
}

async fn run(options: &ExtractBench, url: &str) -> anyhow::Result<String> {
    let mut connection = PgConnection::connect(url).await?;
    let started = Instant::now();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE orders (order_id bigint PRIMARY KEY, customer_email text, sku text, quantity integer, \
         amount numeric(12,2), order_date date, ordered_at timestamptz, updated_at timestamptz NOT NULL); \
         INSERT INTO orders SELECT i, 'customer' || i || '@example.com', 'SKU-' || (i % 997), 1 + i % 9, \
         (i % 100000) / 100.0, DATE '2024-01-01' + (i % 365), TIMESTAMPTZ '2024-01-01 00:00:00+00' + i * INTERVAL '1 second', \
         TIMESTAMPTZ '2024-01-01 00:00:00+00' + i * INTERVAL '1 second' FROM generate_series(1, {}) AS i; \
         CREATE INDEX orders_updated_at ON orders (updated_at); ANALYZE orders",
        options.rows
    )))
    .execute(&mut connection)
    .await?;
    eprintln!("generated {} rows in {:.1} s", options.rows, started.elapsed().as_secs_f64());

    let text = CONTRACT.replace("URL", url).replace("PAGE", &options.page_size.to_string());
    let contract = Contract::parse("bench.toml", &text)?;
    let folder = tempfile::tempdir()?;
    let s3 = EmbeddedS3::start(folder.path()).await?;
    s3.create_bucket("bench").await?;
    let lake = Lake::new(s3.client(), "bench");
    let extractor = Extractor::new(lake.clone(), None);

    let (mut copy, mut incremental, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    let mut copied_bytes = 0u64;
    let mut pages = 0usize;
    let mut written_bytes = 0u64;
    for round in 0..options.rounds.max(1) {
        let started = Instant::now();
        let mut stream = connection.copy_out_raw("COPY (SELECT * FROM orders) TO STDOUT").await?;
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            bytes += chunk?.len() as u64;
        }
        drop(stream);
        copy.push(started.elapsed().as_secs_f64());
        copied_bytes = bytes;

        for (source, times) in [("shop", &mut incremental), ("whole", &mut whole)] {
            // A fresh state each round: every round extracts every row.
            lake.delete(&[lakestar::lake::source_state_key(source)]).await?;
            let started = Instant::now();
            let extraction =
                extractor.extract(contract.source(source).context("the source")?, &Options::default()).await?;
            times.push(started.elapsed().as_secs_f64());
            anyhow::ensure!(
                extraction.rows == options.rows,
                "{source}: extracted {} of {} rows",
                extraction.rows,
                options.rows
            );
            pages = extraction.pages.len();
            if round == 0 && source == "shop" {
                for page in &extraction.pages {
                    written_bytes += lake.get_bytes(&page.key).await?.len() as u64;
                }
            }
        }
        eprintln!(
            "round {}: COPY {:.2} s, extract (cursor) {:.2} s, extract (full) {:.2} s",
            round + 1,
            copy[round],
            incremental[round],
            whole[round]
        );
    }
    let (copy, incremental, whole) = (median(copy), median(incremental), median(whole));
    let rate = |seconds: f64| options.rows as f64 / seconds;
    Ok(format!(
        "extract: {} rows from PostgreSQL, pages of {} ({pages} pages, {:.1} MB gzip NDJSON; COPY text {:.1} MB), median of {} round(s)\n\
         | what | seconds | rows/s | share of COPY's speed |\n| --- | --- | --- | --- |\n\
         | COPY (SELECT * FROM orders) TO STDOUT | {copy:.2} | {:.0} | 1.00 |\n\
         | lakestar extract, incremental (cursor `updated_at`) | {incremental:.2} | {:.0} | {:.2} |\n\
         | lakestar extract, full (no cursor) | {whole:.2} | {:.0} | {:.2} |",
        options.rows,
        options.page_size,
        written_bytes as f64 / 1e6,
        copied_bytes as f64 / 1e6,
        options.rounds.max(1),
        rate(copy),
        rate(incremental),
        copy / incremental,
        rate(whole),
        copy / whole,
    ))
}
