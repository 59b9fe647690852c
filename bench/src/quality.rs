//! What quality rules cost validate: the same ingested sales file validated under contracts
//! that differ only in their sales rules, alternately, round after round, in this process.
//! The ratios to the run without DQDL are what count (this machine's speed drifts).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use lakestar::contract::Contract;
use lakestar::lake::{EmbeddedS3, Lake};
use lakestar::run::RunDescriptor;
use lakestar::stage::StageContext;

use crate::{Size, generate_file, peak_rss, reset_peak_rss, run_stage_on};

/// A dataset whose processed rows `ReferentialIntegrity` looks the sales' customers up in.
const MEMBERS: &str = r#"
[datasets.members]
match = ["landing/bench/members*.csv"]

[datasets.members.table]
name = "dim_member"
kind = "dimension"
natural_key = ["customer_id"]

[[datasets.members.columns]]
name = "customer_id"
required = true
"#;

/// Every rule type's kind of work at once: row rules, a `where`, distinct counts, statistics,
/// an aggregate query, a lookup in another dataset.
const HEAVY: &str = r#"Rules = [
    IsComplete "customer_id",
    ColumnValues "quantity" between -1 and 1000,
    ColumnValues "channel" in ["store", "web", NULL],
    ColumnLength "product_id" <= 8,
    ColumnValues "unit_price" <= 10000 where "quantity < 100",
    IsPrimaryKey "order_id" "line",
    Uniqueness "order_id" >= 0.0,
    Entropy "store_id" > 1,
    Mean "quantity" between 0 and 1000,
    StandardDeviation "unit_price" > 0,
    DistinctValuesCount "channel" <= 2,
    CustomSql "select count(*) from primary where quantity > 50" >= 0,
    ReferentialIntegrity "customer_id" "members.customer_id" >= 0.9
]"#;

/// The contract variants, each with what it adds to the sales dataset.
fn variants() -> anyhow::Result<Vec<(&'static str, &'static str, Contract)>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail/pipeline.toml");
    let example = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    // The sales' DQDL rulesets, from `dqdl = """` to the end of `dqdl_warn`.
    let quality = example.find("[datasets.sales.quality]").context("the example's sales quality section")?;
    let start = quality + example[quality..].find("dqdl = \"\"\"").context("the sales' dqdl")?;
    let warn = start + example[start..].find("dqdl_warn = \"\"\"").context("the sales' dqdl_warn")?;
    let end = warn + 15 + example[warn + 15..].find("\"\"\"").context("the end of dqdl_warn")? + 3;
    let with = |rules: &str, schema: &str| -> anyhow::Result<Contract> {
        let mut text = format!("{}{rules}{}{MEMBERS}", &example[..start], &example[end..]);
        if !schema.is_empty() {
            text = text.replacen("[datasets.sales]\n", &format!("[datasets.sales]\n{schema}\n"), 1);
        }
        Ok(Contract::parse("bench.toml", &text)?)
    };
    Ok(vec![
        ("none", "no DQDL (the contract's column checks only)", with("", "")?),
        (
            "example",
            "the retail example's rulesets (3 rules and 1 warning)",
            Contract::parse("bench.toml", &format!("{example}{MEMBERS}"))?,
        ),
        (
            "heavy",
            "13 rules: row, where, distinct, statistics, SQL, ReferentialIntegrity",
            with(&format!("dqdl = \"\"\"\n{HEAVY}\n\"\"\""), "")?,
        ),
        (
            "type-scan",
            "no DQDL, schema_contract data_type = evolve (validate's first pass reads every column's type)",
            with("", "schema_contract = { columns = \"discard_value\", data_type = \"evolve\" }")?,
        ),
    ])
}

/// Runs the benchmark and returns its figures.
pub async fn bench(size: Size, rounds: usize, work: Option<PathBuf>) -> anyhow::Result<serde_json::Value> {
    let temporary = tempfile::tempdir()?;
    let work = work.unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&work)?;
    let source = work.join("sales.csv");
    let generated = generate_file(&source, &size)?;
    let s3 = EmbeddedS3::start(&work.join("s3")).await?;
    s3.create_bucket("bench").await?;
    let lake = Lake::new(s3.client(), "bench");
    let put = |key: &'static str, body: ByteStream| {
        let client = s3.client();
        async move { client.put_object().bucket("bench").key(key).body(body).send().await.context("uploading") }
    };
    put("landing/bench/sales.csv", ByteStream::from_path(&source).await?).await?;
    std::fs::remove_file(&source)?;
    // The generator's customers are C000000 to C199999; the members hold 95 % of them.
    let mut members = String::from("customer_id\n");
    for customer in (0..200_000u32).filter(|customer| customer % 20 != 7) {
        members.push_str(&format!("C{customer:06}\n"));
    }
    put("landing/bench/members.csv", ByteStream::from(members.into_bytes())).await?;

    let variants = variants()?;
    let context = |contract: &Contract| StageContext::new(lake.clone(), contract.clone());
    let now = chrono::Utc::now();
    let staged = |dataset: &str, key: &str, bytes: u64| {
        serde_json::to_vec(
            &serde_json::json!({ "run": RunDescriptor::new(dataset, "bench", key, None, None, bytes, now) }),
        )
    };
    // The members validated once, so their processed rows are in the lake.
    let members_state = staged("members", "landing/bench/members.csv", 0)?;
    let members_state = run_stage_on("ingest", &context(&variants[0].2), &members_state).await?;
    run_stage_on("validate", &context(&variants[0].2), &serde_json::to_vec(&members_state)?).await?;
    // The sales ingested once; each variant validates the same raw parts.
    let sales_state = staged("sales", "landing/bench/sales.csv", generated.bytes)?;
    let ingested = serde_json::to_vec(&run_stage_on("ingest", &context(&variants[0].2), &sales_state).await?)?;

    let megabytes = generated.bytes as f64 / 1e6;
    println!(
        "validate of a {megabytes:.0} MB sales file ({} rows) under each contract, {rounds} round(s) alternately",
        generated.rows
    );
    // Per variant: seconds and peak RSS of each round, and the last round's outcome.
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut peaks: Vec<u64> = vec![0; variants.len()];
    let mut outcomes: Vec<serde_json::Value> = vec![serde_json::Value::Null; variants.len()];
    for round in 1..=rounds.max(1) {
        for (index, (name, _, contract)) in variants.iter().enumerate() {
            reset_peak_rss();
            let started = Instant::now();
            let state = run_stage_on("validate", &context(contract), &ingested).await?;
            let elapsed = started.elapsed().as_secs_f64();
            let validated = state.validate.as_ref().context("the validate section")?;
            anyhow::ensure!(
                validated.received == validated.valid + validated.rejected,
                "{name}: rows lost, received ≠ valid + rejected"
            );
            println!(
                "  round {round}: {name:<10} {elapsed:>6.2} s, {} valid, {} rejected",
                validated.valid, validated.rejected
            );
            seconds[index].push(elapsed);
            peaks[index] = peaks[index].max(peak_rss());
            outcomes[index] = serde_json::json!({
                "valid": validated.valid,
                "rejected": validated.rejected,
                "rules": validated.rules.iter().map(|rule| serde_json::json!({ "rule": rule.rule, "outcome": rule.outcome })).collect::<Vec<_>>(),
            });
        }
    }
    let median = |values: &[f64]| {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    };
    println!("variant     seconds  MB/s    time / none  peak_RSS_MiB  what");
    let mut lines = Vec::new();
    for (index, (name, what, _)) in variants.iter().enumerate() {
        // The ratio of each round to the same round's run without DQDL, then the median.
        let ratios: Vec<f64> = seconds[index].iter().zip(&seconds[0]).map(|(own, none)| own / none).collect();
        let (own, ratio) = (median(&seconds[index]), median(&ratios));
        println!(
            "{name:<11} {own:<8.2} {:<7.1} {ratio:<12.2} {:<13.1} {what}",
            megabytes / own,
            peaks[index] as f64 / (1024.0 * 1024.0)
        );
        lines.push(serde_json::json!({
            "variant": name, "what": what, "seconds": own, "rounds": seconds[index], "time_over_none": ratio,
            "peak_rss_bytes": peaks[index], "outcome": outcomes[index],
        }));
    }
    Ok(
        serde_json::json!({ "bench": "quality", "file_bytes": generated.bytes, "rows": generated.rows, "results": lines }),
    )
}
