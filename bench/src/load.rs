//! The load benchmark: curated Parquet of the retail star schema, generated, loaded into a
//! fresh PostgreSQL database by the load stage, next to a bare `COPY` of the same rows into
//! empty tables in the same run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Schema};
use lakestar::contract::{Contract, Dataset};
use lakestar::run::RunDescriptor;
use lakestar::warehouse::{CopyFormat, Warehouse};
use parquet::arrow::ArrowWriter;

/// 2024-01-01 as days since the epoch.
const JANUARY_2024: i32 = 19_723;
/// 2023-06-01T00:00:00Z, when every first version takes effect.
pub const FIRST_VERSION_MICROS: i64 = 1_685_577_600_000_000;
/// 2024-06-01T00:00:00Z, when the changed rows' new versions take effect.
pub const CHANGE_MICROS: i64 = 1_717_200_000_000_000;

/// What to generate.
pub struct LoadBench {
    pub facts: u64,
    pub dimension_rows: u64,
    pub changed: f64,
    pub admin_url: String,
    pub work: PathBuf,
}

/// The rows of a dimension (`version` 1 changes every `1/changed`-th row's tracked columns).
fn dimension_batch(
    dataset: &Dataset,
    start: u64,
    rows: u64,
    version: u32,
    changed_every: u64,
) -> anyhow::Result<RecordBatch> {
    let fields = lakestar::lake::schema::curated_fields(dataset);
    let natural_key = &dataset.table.natural_key;
    let effective = dataset.table.effective_from.clone();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (field, column) in fields.iter().zip(&dataset.columns) {
        let changed = |index: u64| version > 0 && changed_every > 0 && index.is_multiple_of(changed_every);
        let indexes = start..start + rows;
        let array: ArrayRef = if natural_key.contains(&column.name) {
            Arc::new(StringArray::from_iter_values(indexes.map(|index| format!("K{index}"))))
        } else if effective.as_deref() == Some(column.name.as_str()) {
            let values =
                indexes.map(|index| if changed(index) { CHANGE_MICROS + index as i64 } else { FIRST_VERSION_MICROS });
            Arc::new(TimestampMicrosecondArray::from_iter_values(values).with_timezone("UTC"))
        } else if column.config.scd == Some(2) {
            let values = indexes.map(|index| {
                if changed(index) {
                    format!("{}-{}-v{version}", column.name, index % 97)
                } else {
                    format!("{}-{}", column.name, index % 97)
                }
            });
            Arc::new(StringArray::from_iter_values(values))
        } else {
            value_array(field.data_type(), &column.name, indexes)?
        };
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// Generic values of a type for rows `indexes`.
fn value_array(data_type: &DataType, name: &str, indexes: std::ops::Range<u64>) -> anyhow::Result<ArrayRef> {
    Ok(match data_type {
        DataType::Utf8 => {
            Arc::new(StringArray::from_iter_values(indexes.map(|index| format!("{name}-{}", index % 1013))))
        }
        DataType::Int64 => Arc::new(Int64Array::from_iter_values(indexes.map(|index| (index % 1000) as i64 + 1))),
        DataType::Float64 => Arc::new(Float64Array::from_iter_values(indexes.map(|index| index as f64 * 0.5))),
        DataType::Boolean => Arc::new(BooleanArray::from_iter(indexes.map(|index| Some(index.is_multiple_of(2))))),
        DataType::Decimal128(precision, scale) => Arc::new(
            Decimal128Array::from_iter_values(indexes.map(|index| (index % 100_000) as i128 * 7))
                .with_precision_and_scale(*precision, *scale)?,
        ),
        DataType::Date32 => {
            Arc::new(Date32Array::from_iter_values(indexes.map(|index| JANUARY_2024 + (index % 366) as i32)))
        }
        DataType::Timestamp(_, _) => Arc::new(
            TimestampMicrosecondArray::from_iter_values(indexes.map(|index| FIRST_VERSION_MICROS + index as i64))
                .with_timezone("UTC"),
        ),
        other => anyhow::bail!("the load benchmark cannot generate {other} values"),
    })
}

/// The rows of a fact, referencing dimensions of the given sizes.
fn fact_batch(
    dataset: &Dataset,
    contract: &Contract,
    start: u64,
    rows: u64,
    sizes: &[(String, u64)],
) -> anyhow::Result<RecordBatch> {
    let fields = lakestar::lake::schema::curated_fields(dataset);
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (field, column) in fields.iter().zip(&dataset.columns) {
        let indexes = start..start + rows;
        let reference = dataset.table.references.iter().find(|reference| reference.columns.contains(&column.name));
        let array: ArrayRef = if let Some(reference) = reference {
            let size = sizes.iter().find(|(name, _)| name == &reference.dimension).map_or(1, |(_, size)| *size).max(1);
            let _ = contract;
            Arc::new(StringArray::from_iter_values(
                indexes.map(|index| format!("K{}", index.wrapping_mul(7919) % size)),
            ))
        } else if dataset.table.natural_key.first() == Some(&column.name) {
            // Order numbers as the retail contract has them (`O` and nine digits), four lines each.
            Arc::new(StringArray::from_iter_values(indexes.map(|index| format!("O{:09}", index / 4))))
        } else if dataset.table.natural_key.get(1) == Some(&column.name) {
            Arc::new(Int64Array::from_iter_values(indexes.map(|index| (index % 4) as i64 + 1)))
        } else if dataset.table.date_column.as_deref() == Some(column.name.as_str()) {
            Arc::new(Date32Array::from_iter_values(indexes.map(|index| JANUARY_2024 + (index % 366) as i32)))
        } else {
            value_array(field.data_type(), &column.name, indexes)?
        };
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// Writes batches produced by `make(start, rows)` to a Parquet file.
fn write_parquet(
    path: &Path,
    total: u64,
    make: impl Fn(u64, u64) -> anyhow::Result<RecordBatch>,
) -> anyhow::Result<PathBuf> {
    let first = make(0, total.min(65_536))?;
    let mut writer = ArrowWriter::try_new(std::fs::File::create(path)?, first.schema(), None)?;
    writer.write(&first)?;
    let mut start = first.num_rows() as u64;
    while start < total {
        let rows = (total - start).min(65_536);
        writer.write(&make(start, rows)?)?;
        start += rows;
    }
    writer.close()?;
    Ok(path.to_path_buf())
}

pub fn run(dataset: &str, name: &str, time_micros: i64) -> RunDescriptor {
    let time = chrono::DateTime::from_timestamp_micros(time_micros).unwrap_or_default();
    RunDescriptor::new(dataset, "bench", &format!("landing/bench/{name}"), None, Some(name), 0, time)
}

pub async fn load(
    warehouse: &Warehouse,
    contract: &Contract,
    run: &RunDescriptor,
    file: &Path,
) -> anyhow::Result<(f64, lakestar::warehouse::TableCounts)> {
    let started = Instant::now();
    let (tables, _) =
        warehouse.load(contract, run, vec![std::fs::File::open(file)?], |_, _| Vec::new(), async |_| Ok(())).await?;
    let table = contract.dataset(&run.dataset).map(|dataset| dataset.table.name.clone()).unwrap_or_default();
    Ok((started.elapsed().as_secs_f64(), tables.get(&table).copied().unwrap_or_default()))
}

/// The dimensions' first deliveries, written under `work`: products (1 000), stores (50) and
/// customers (`customers` rows), each with its dataset, in load order.
pub fn dimension_parquet(contract: &Contract, work: &Path, customers: u64) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for (name, rows) in [("products", 1_000), ("stores", 50), ("customers", customers)] {
        let dataset = contract.dataset(name).ok_or_else(|| anyhow::anyhow!("no {name} dataset"))?;
        let table = &dataset.table.name;
        files.push((
            name.to_string(),
            write_parquet(&work.join(format!("{table}_v0.parquet")), rows, |start, rows| {
                dimension_batch(dataset, start, rows, 0, 0)
            })?,
        ));
    }
    Ok(files)
}

/// `facts` fact rows from row `start` on, referencing `customers` customers, written to `name`.
pub fn fact_parquet(
    contract: &Contract,
    work: &Path,
    customers: u64,
    facts: u64,
    start: u64,
    name: &str,
) -> anyhow::Result<PathBuf> {
    let sales = contract.dataset("sales").ok_or_else(|| anyhow::anyhow!("no sales dataset"))?;
    let sizes =
        [("dim_customer".to_string(), customers), ("dim_product".to_string(), 1_000), ("dim_store".to_string(), 50)];
    write_parquet(&work.join(name), facts, |first, rows| fact_batch(sales, contract, start + first, rows, &sizes))
}

/// Creates the database `name` afresh next to `admin_url`'s; returns its URL.
async fn scratch_database(admin: &sqlx::PgPool, admin_url: &str, name: &str) -> anyhow::Result<String> {
    drop_database(admin, name).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(admin).await?;
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

async fn drop_database(admin: &sqlx::PgPool, name: &str) -> anyhow::Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))).execute(admin).await?;
    Ok(())
}

/// The seconds of a first delivery of `dim_customer` and of the changed delivery after it,
/// into a database of their own.
async fn dimension_round(
    admin: &sqlx::PgPool,
    admin_url: &str,
    contract: &Contract,
    first: &Path,
    changed: &Path,
    round: usize,
) -> anyhow::Result<(f64, f64)> {
    let name = format!("lakestar_bench_dimension_{}_{round}", std::process::id());
    let url = scratch_database(admin, admin_url, &name).await?;
    let result = async {
        let warehouse = Warehouse::connect(&url).await?;
        // The bare COPYs run on a connection that has been used; so does a Lambda's load after
        // its first invocation. One catalog query opens this database's connection and fills
        // its caches (about 0.1 s on a database just created) before the clock starts.
        warehouse.existing_columns("dim_customer").await?;
        let (first, _) =
            load(&warehouse, contract, &run("customers", "customers_v0", FIRST_VERSION_MICROS), first).await?;
        let (second, _) = load(&warehouse, contract, &run("customers", "customers_v1", CHANGE_MICROS), changed).await?;
        if let Warehouse::Postgres(pool) = warehouse {
            pool.close().await;
        }
        anyhow::Ok((first, second))
    }
    .await;
    drop_database(admin, &name).await?;
    result
}

/// The median of three.
fn median(mut seconds: [f64; 3]) -> f64 {
    seconds.sort_by(f64::total_cmp);
    seconds[1]
}

/// A bare `COPY` in `format` of the file's rows into a new table shaped like `table`: without
/// indexes, or with them (`keyed`: the fact's primary key, the dimension's indexes). Done
/// three times into a fresh table each, the median kept: one copy of 200 000 rows lasts half a
/// second, and a single one swings the ratios by a tenth on a shared machine.
async fn bare_copy(
    warehouse: &Warehouse,
    admin: &sqlx::PgPool,
    table: &str,
    file: &Path,
    keyed: bool,
    format: CopyFormat,
) -> anyhow::Result<f64> {
    let mut seconds = [0.0; 3];
    for (round, slot) in seconds.iter_mut().enumerate() {
        let copy = format!("bench_copy_{table}{}_{round}", if keyed { "_keyed" } else { "" });
        let create = if keyed {
            format!("CREATE TABLE \"{copy}\" (LIKE \"{table}\" INCLUDING ALL)")
        } else {
            format!("CREATE TABLE \"{copy}\" AS SELECT * FROM \"{table}\" WHERE FALSE")
        };
        sqlx::query(sqlx::AssertSqlSafe(create)).execute(admin).await?;
        let started = Instant::now();
        warehouse.bulk_copy(&copy, vec![std::fs::File::open(file)?], format).await?;
        *slot = started.elapsed().as_secs_f64();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE \"{copy}\""))).execute(admin).await?;
    }
    Ok(median(seconds))
}

/// Runs the benchmark, prints its table, and returns its figures.
pub async fn bench(options: LoadBench) -> anyhow::Result<serde_json::Value> {
    // Long on purpose: the benchmark's script, step after step, each printed as it runs.
    let with_marts = crate::contract()?;
    // The star tables' loads on their own; what the example's marts add is timed apart.
    let mut contract = with_marts.clone();
    contract.marts.clear();
    let dataset = |name: &str| contract.dataset(name).cloned().ok_or_else(|| anyhow::anyhow!("no {name} dataset"));
    let (customers, products, stores) = (dataset("customers")?, dataset("products")?, dataset("stores")?);
    std::fs::create_dir_all(&options.work)?;
    let changed_every = if options.changed > 0.0 { (1.0 / options.changed).round() as u64 } else { 0 };
    let dims = options.dimension_rows;
    eprintln!("Generating {dims} dimension rows and {} fact rows in {} ...", options.facts, options.work.display());
    let work = &options.work;
    let customers_v0 = write_parquet(&work.join("dim_customer_v0.parquet"), dims, |start, rows| {
        dimension_batch(&customers, start, rows, 0, 0)
    })?;
    let customers_v1 = write_parquet(&work.join("dim_customer_v1.parquet"), dims, |start, rows| {
        dimension_batch(&customers, start, rows, 1, changed_every)
    })?;
    let products_file = write_parquet(&work.join("dim_product.parquet"), 1_000, |start, rows| {
        dimension_batch(&products, start, rows, 0, 0)
    })?;
    let stores_file =
        write_parquet(&work.join("dim_store.parquet"), 50, |start, rows| dimension_batch(&stores, start, rows, 0, 0))?;
    let facts = fact_parquet(&contract, work, dims, options.facts, 0, "fact_sales.parquet")?;
    // The next delivery of as many facts, appended to the loaded ones.
    let more_facts = fact_parquet(&contract, work, dims, options.facts, options.facts, "fact_sales_more.parquet")?;

    // A fresh database.
    let name = format!("lakestar_bench_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&options.admin_url).await?;
    let url = scratch_database(&admin, &options.admin_url, &name).await?;
    let result = async {
        let warehouse = Warehouse::connect(&url).await?;
        let database = sqlx::PgPool::connect(&url).await?;
        let (seconds_products, _) =
            load(&warehouse, &contract, &run("products", "products", FIRST_VERSION_MICROS), &products_file).await?;
        let (seconds_stores, _) =
            load(&warehouse, &contract, &run("stores", "stores", FIRST_VERSION_MICROS), &stores_file).await?;
        let (first_once, first_counts) =
            load(&warehouse, &contract, &run("customers", "customers_v0", FIRST_VERSION_MICROS), &customers_v0).await?;
        let (second_once, second_counts) =
            load(&warehouse, &contract, &run("customers", "customers_v1", CHANGE_MICROS), &customers_v1).await?;
        let (fact_seconds, fact_counts) =
            load(&warehouse, &contract, &run("sales", "sales", CHANGE_MICROS), &facts).await?;
        let (more_seconds, more_counts) =
            load(&warehouse, &contract, &run("sales", "sales_more", CHANGE_MICROS + 86_400_000_000), &more_facts)
                .await?;
        anyhow::ensure!(more_counts.inserted == options.facts, "every appended fact is new: {more_counts:?}");
        // The example's marts over the two million facts: made, then refreshed as a load of
        // fact_sales refreshes them before it commits.
        let started = Instant::now();
        warehouse.ensure_tables(&with_marts).await?;
        let marts_made = started.elapsed().as_secs_f64();
        let started = Instant::now();
        warehouse.refresh_marts(&with_marts, "fact_sales").await?;
        let marts_refreshed = started.elapsed().as_secs_f64();
        // The target's baseline is a bare COPY in CSV, as `psql`'s `\copy` of the rows would
        // be; the load sends binary, so a bare binary COPY is shown beside it.
        let csv = CopyFormat::Csv;
        let copy_dim = bare_copy(&warehouse, &database, "dim_customer", &customers_v1, false, csv).await?;
        let copy_fact = bare_copy(&warehouse, &database, "fact_sales", &facts, false, csv).await?;
        let copy_fact_keyed = bare_copy(&warehouse, &database, "fact_sales", &facts, true, csv).await?;
        let binary = CopyFormat::Binary;
        let binary_dim = bare_copy(&warehouse, &database, "dim_customer", &customers_v1, false, binary).await?;
        let binary_fact = bare_copy(&warehouse, &database, "fact_sales", &facts, false, binary).await?;
        let versions: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM dim_customer").fetch_one(&database).await?;
        database.close().await;
        if let Warehouse::Postgres(pool) = warehouse {
            pool.close().await;
        }
        // Two more rounds of the dimension's deliveries, each into a database of its own: the
        // medians are compared with the bare COPY's, itself the median of three.
        let mut firsts = [first_once; 3];
        let mut seconds = [second_once; 3];
        for round in 1..3 {
            (firsts[round], seconds[round]) =
                dimension_round(&admin, &options.admin_url, &contract, &customers_v0, &customers_v1, round).await?;
        }
        let (first, second) = (median(firsts), median(seconds));

        let rate = |rows: u64, seconds: f64| rows as f64 / seconds;
        println!("{:<34} {:>9} {:>8} {:>11}", "load into PostgreSQL", "rows", "seconds", "rows/s");
        let line = |what: &str, rows: u64, seconds: f64| {
            println!("{what:<34} {rows:>9} {seconds:>8.2} {:>11.0}", rate(rows, seconds))
        };
        line("dim_product (new)", 1_000, seconds_products);
        line("dim_store (new)", 50, seconds_stores);
        line("dim_customer, first delivery (*)", dims, first);
        line(&format!("dim_customer, {:.0} % changed (*)", options.changed * 100.0), dims, second);
        line("fact_sales, into the empty table", options.facts, fact_seconds);
        line("fact_sales, as many again appended", options.facts, more_seconds);
        line("bare COPY dim_customer rows", dims, copy_dim);
        line("bare COPY fact_sales rows", options.facts, copy_fact);
        line("bare COPY fact_sales, with its key", options.facts, copy_fact_keyed);
        line("bare binary COPY dim_customer rows", dims, binary_dim);
        line("bare binary COPY fact_sales rows", options.facts, binary_fact);
        let dim_ratio = rate(dims, second) / rate(dims, copy_dim);
        let first_ratio = rate(dims, first) / rate(dims, copy_dim);
        let fact_ratio = rate(options.facts, fact_seconds) / rate(options.facts, copy_fact);
        let combined =
            rate(dims + options.facts, second + fact_seconds) / rate(dims + options.facts, copy_dim + copy_fact);
        let append_ratio = rate(options.facts, more_seconds) / rate(options.facts, copy_fact);
        let append_keyed_ratio = rate(options.facts, more_seconds) / rate(options.facts, copy_fact_keyed);
        let binary_dim_ratio = rate(dims, second) / rate(dims, binary_dim);
        let binary_first_ratio = rate(dims, first) / rate(dims, binary_dim);
        let binary_fact_ratio = rate(options.facts, fact_seconds) / rate(options.facts, binary_fact);
        let binary_combined =
            rate(dims + options.facts, second + fact_seconds) / rate(dims + options.facts, binary_dim + binary_fact);
        println!(
            "(*) median of three rounds, each into a fresh database: first delivery {}, changed {}",
            seconds_list(&firsts),
            seconds_list(&seconds)
        );
        println!(
            "load ÷ bare COPY: dimension merge {dim_ratio:.2}, facts {fact_ratio:.2}, both {combined:.2} (target ≥ 0.5)"
        );
        println!(
            "appended facts ÷ bare COPY {append_ratio:.2}; ÷ COPY into a table with the fact's key {append_keyed_ratio:.2}; \
             first dimension delivery ÷ bare COPY {first_ratio:.2}"
        );
        println!(
            "load ÷ bare binary COPY: dimension merge {binary_dim_ratio:.2}, facts {binary_fact_ratio:.2}, \
             both {binary_combined:.2}; first delivery {binary_first_ratio:.2}"
        );
        println!(
            "the example's two marts over {} facts: made in {marts_made:.2} s, refreshed (as a load of fact_sales does) in {marts_refreshed:.2} s",
            2 * options.facts
        );
        println!(
            "counts: first {:?}; changed {:?}; facts {:?}; dim_customer versions {}",
            first_counts, second_counts, fact_counts, versions.0
        );
        anyhow::Ok(serde_json::json!({
            "dimension_rows": dims, "fact_rows": options.facts, "changed": options.changed,
            "dimension_first_seconds": first, "dimension_changed_seconds": second, "fact_seconds": fact_seconds,
            "dimension_first_rounds": firsts, "dimension_changed_rounds": seconds,
            "copy_dimension_seconds": copy_dim, "copy_fact_seconds": copy_fact,
            "copy_fact_keyed_seconds": copy_fact_keyed,
            "copy_binary_dimension_seconds": binary_dim, "copy_binary_fact_seconds": binary_fact,
            "ratio_binary_dimension": binary_dim_ratio, "ratio_binary_fact": binary_fact_ratio,
            "ratio_binary_combined": binary_combined, "ratio_binary_dimension_first": binary_first_ratio,
            "fact_appended_seconds": more_seconds,
            "ratio_dimension": dim_ratio, "ratio_fact": fact_ratio, "ratio_combined": combined,
            "ratio_dimension_first": first_ratio,
            "ratio_fact_appended": append_ratio, "ratio_fact_appended_keyed": append_keyed_ratio,
            "updated": second_counts.updated, "versions": versions.0,
            "marts_made_seconds": marts_made, "marts_refreshed_seconds": marts_refreshed,
        }))
    }
    .await;
    drop_database(&admin, &name).await?;
    result
}

/// Seconds as `0.91 / 0.95 / 1.02`.
fn seconds_list(seconds: &[f64]) -> String {
    seconds.iter().map(|seconds| format!("{seconds:.2}")).collect::<Vec<_>>().join(" / ") + " s"
}

/// The chain's curated facts through the load stage and through bare `COPY`s.
pub struct CuratedLoad {
    pub load_seconds: f64,
    /// A bare `COPY` in CSV: the target's baseline.
    pub copy_seconds: f64,
    /// A bare binary `COPY`, the load's own format.
    pub binary_copy_seconds: f64,
    pub counts: lakestar::warehouse::TableCounts,
}

/// Loads a run's curated fact parts through the load stage into a scratch database, then
/// `COPY`s the same rows into an empty table in CSV and in binary: seconds for each.
pub async fn curated(
    admin_url: &str,
    contract: &Contract,
    run: &RunDescriptor,
    load_files: Vec<std::fs::File>,
    copy_files: Vec<std::fs::File>,
) -> anyhow::Result<CuratedLoad> {
    let name = format!("lakestar_bench_chain_{}", std::process::id());
    let admin = sqlx::PgPool::connect(admin_url).await?;
    let url = scratch_database(&admin, admin_url, &name).await?;
    let result = async {
        let warehouse = Warehouse::connect(&url).await?;
        let database = sqlx::PgPool::connect(&url).await?;
        let table = contract.dataset(&run.dataset).map(|dataset| dataset.table.name.clone()).unwrap_or_default();
        // A used connection, as the bare COPYs below have (see `dimension_round`).
        warehouse.existing_columns(&table).await?;
        let started = Instant::now();
        let (tables, _) = warehouse.load(contract, run, load_files, |_, _| Vec::new(), async |_| Ok(())).await?;
        let load_seconds = started.elapsed().as_secs_f64();
        let copy = |format: CopyFormat, files: Vec<std::fs::File>| {
            let (warehouse, database, table) = (&warehouse, &database, &table);
            async move {
                let name = match format {
                    CopyFormat::Csv => "bench_copy_csv",
                    CopyFormat::Binary => "bench_copy_binary",
                };
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE TABLE \"{name}\" AS SELECT * FROM \"{table}\" WHERE FALSE"
                )))
                .execute(database)
                .await?;
                let started = Instant::now();
                warehouse.bulk_copy(name, files, format).await?;
                anyhow::Ok(started.elapsed().as_secs_f64())
            }
        };
        // The Parquet reader reads by position, so the same files serve both copies.
        let again = copy_files.iter().map(std::fs::File::try_clone).collect::<std::io::Result<Vec<_>>>()?;
        let copy_seconds = copy(CopyFormat::Csv, copy_files).await?;
        let binary_copy_seconds = copy(CopyFormat::Binary, again).await?;
        database.close().await;
        if let Warehouse::Postgres(pool) = warehouse {
            pool.close().await;
        }
        let counts = tables.get(&table).copied().unwrap_or_default();
        anyhow::Ok(CuratedLoad { load_seconds, copy_seconds, binary_copy_seconds, counts })
    }
    .await;
    drop_database(&admin, &name).await?;
    result
}
