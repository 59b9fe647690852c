//! The load into SQLite (what `lakestar run` loads into by default): generated curated Parquet
//! of the retail star schema loaded by the load stage into a fresh SQLite file, new facts into
//! an empty table and a second delivery appended, next to the same fact rows put into an empty
//! table of the same columns by a bare prepared `INSERT` per row in one transaction, and by the
//! `sqlite3` shell's `.import` of them as CSV.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use lakestar::warehouse::Warehouse;

use crate::load::{dimension_parquet, fact_parquet, load, run};

/// What to generate.
pub struct SqliteBench {
    pub facts: u64,
    pub dimension_rows: u64,
    pub rounds: usize,
    pub work: PathBuf,
}

/// The fact table's rows as text, in column order, and its column names.
async fn fact_rows(pool: &sqlx::SqlitePool) -> anyhow::Result<(Vec<String>, Vec<Vec<Option<String>>>)> {
    use sqlx::Row as _;
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('fact_sales') ORDER BY cid").fetch_all(pool).await?;
    let select: Vec<String> = columns.iter().map(|name| format!("CAST(\"{name}\" AS TEXT)")).collect();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {} FROM fact_sales", select.join(", "))))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| (0..row.len()).map(|index| row.try_get::<Option<String>, _>(index).ok().flatten()).collect())
        .collect();
    Ok((columns, rows))
}

/// A bare `INSERT` of each row, prepared once, in one transaction, into an empty copy of the
/// fact table in a database of its own; its seconds.
async fn bare_insert(
    path: &std::path::Path,
    schema: &str,
    columns: &[String],
    rows: &[Vec<Option<String>>],
) -> anyhow::Result<f64> {
    let _ = std::fs::remove_file(path);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display())).await?;
    sqlx::query(sqlx::AssertSqlSafe(schema.to_string())).execute(&pool).await?;
    let names: Vec<String> = columns.iter().map(|name| format!("\"{name}\"")).collect();
    let statement =
        format!("INSERT INTO fact_sales ({}) VALUES ({})", names.join(", "), vec!["?"; columns.len()].join(", "));
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    for row in rows {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement.clone()));
        for value in row {
            query = query.bind(value.as_deref());
        }
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let seconds = started.elapsed().as_secs_f64();
    pool.close().await;
    Ok(seconds)
}

/// The `sqlite3` shell's `.import` of the rows as CSV into an empty copy of the fact table;
/// its seconds.
fn shell_import(path: &std::path::Path, schema: &str, csv: &std::path::Path) -> anyhow::Result<f64> {
    let _ = std::fs::remove_file(path);
    let created = std::process::Command::new("sqlite3").arg(path).arg(schema).status().context("sqlite3 runs")?;
    anyhow::ensure!(created.success(), "sqlite3 could not create the table");
    let started = Instant::now();
    let imported = std::process::Command::new("sqlite3")
        .arg(path)
        .arg(".mode csv")
        .arg(format!(".import {} fact_sales", csv.display()))
        .status()
        .context("sqlite3 runs")?;
    anyhow::ensure!(imported.success(), "sqlite3 .import failed");
    Ok(started.elapsed().as_secs_f64())
}

fn csv_field(value: Option<&str>, out: &mut String) {
    if let Some(value) = value {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs the benchmark and returns its figures.
pub async fn bench(options: SqliteBench) -> anyhow::Result<serde_json::Value> {
    let mut contract = crate::contract()?;
    contract.marts.clear();
    std::fs::create_dir_all(&options.work)?;
    let work = &options.work;
    eprintln!(
        "Generating {} dimension rows and {} fact rows in {} ...",
        options.dimension_rows,
        options.facts,
        work.display()
    );
    let dims = dimension_parquet(&contract, work, options.dimension_rows)?;
    let facts = fact_parquet(&contract, work, options.dimension_rows, options.facts, 0, "fact_sales.parquet")?;
    let more =
        fact_parquet(&contract, work, options.dimension_rows, options.facts, options.facts, "fact_sales_more.parquet")?;

    let (mut new_facts, mut appended, mut inserts, mut imports) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=options.rounds.max(1) {
        let database = work.join("warehouse.db");
        let _ = std::fs::remove_file(&database);
        let warehouse = Warehouse::connect(&format!("sqlite://{}", database.display())).await?;
        for (dataset, file) in &dims {
            load(&warehouse, &contract, &run(dataset, dataset, crate::load::FIRST_VERSION_MICROS), file).await?;
        }
        let (seconds, counts) =
            load(&warehouse, &contract, &run("sales", "sales", crate::load::CHANGE_MICROS), &facts).await?;
        anyhow::ensure!(counts.inserted == options.facts, "every fact is new: {counts:?}");
        new_facts.push(seconds);
        let (seconds, counts) = load(
            &warehouse,
            &contract,
            &run("sales", "sales_more", crate::load::CHANGE_MICROS + 86_400_000_000),
            &more,
        )
        .await?;
        anyhow::ensure!(counts.inserted == options.facts, "every appended fact is new: {counts:?}");
        appended.push(seconds);
        let Warehouse::Sqlite(pool) = &warehouse else { anyhow::bail!("not SQLite") };
        // The same first delivery's rows, as the warehouse holds them, for the anchors, into
        // an empty table of the same columns (no keys, no indexes).
        let (columns, mut rows) = fact_rows(pool).await?;
        rows.truncate(options.facts as usize);
        pool.close().await;
        let bare_schema = format!(
            "CREATE TABLE fact_sales ({})",
            columns.iter().map(|name| format!("\"{name}\"")).collect::<Vec<_>>().join(", ")
        );
        inserts.push(bare_insert(&work.join("bare.db"), &bare_schema, &columns, &rows).await?);
        let csv = work.join("fact_sales.csv");
        let mut text = String::new();
        for row in &rows {
            for (index, value) in row.iter().enumerate() {
                if index > 0 {
                    text.push(',');
                }
                csv_field(value.as_deref(), &mut text);
            }
            text.push('\n');
        }
        std::fs::write(&csv, text)?;
        imports.push(shell_import(&work.join("import.db"), &bare_schema, &csv)?);
        println!(
            "round {round}: load of {} new facts {:.2} s, appended {:.2} s; bare INSERT {:.2} s; sqlite3 .import {:.2} s",
            options.facts,
            new_facts[round - 1],
            appended[round - 1],
            inserts[round - 1],
            imports[round - 1]
        );
    }
    let rate = |seconds: f64| options.facts as f64 / seconds;
    let (new_facts, appended, inserts, imports) =
        (median(&mut new_facts), median(&mut appended), median(&mut inserts), median(&mut imports));
    println!("what                                   seconds  rows/s     load speed / this");
    println!("load stage, new facts (empty table)    {new_facts:<8.2} {:<10.0} 1.00", rate(new_facts));
    println!(
        "load stage, appended facts             {appended:<8.2} {:<10.0} {:.2}",
        rate(appended),
        appended / new_facts
    );
    println!(
        "bare prepared INSERT per row, one tx   {inserts:<8.2} {:<10.0} {:.2}",
        rate(inserts),
        inserts / new_facts
    );
    println!(
        "sqlite3 .import of the rows as CSV     {imports:<8.2} {:<10.0} {:.2}",
        rate(imports),
        imports / new_facts
    );
    Ok(serde_json::json!({
        "bench": "sqlite-load",
        "facts": options.facts,
        "new_facts": { "seconds": new_facts, "rows_per_second": rate(new_facts) },
        "appended": { "seconds": appended, "rows_per_second": rate(appended) },
        "bare_insert": { "seconds": inserts, "rows_per_second": rate(inserts), "load_over_it": inserts / new_facts },
        "sqlite3_import": { "seconds": imports, "rows_per_second": rate(imports), "load_over_it": imports / new_facts },
    }))
}
