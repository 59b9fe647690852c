//! `lakestar-bench`: generates test data and measures the stages on it, printing a table and
//! a JSON line. Numbers, not assertions: targets are judged by reading them.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod coldstart;
mod extract;
mod generate;
mod load;
mod quality;
mod sqlite;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use clap::{Parser, Subcommand};
use lakestar::contract::Contract;
use lakestar::lake::{EmbeddedS3, Lake};
use lakestar::run::RunDescriptor;
use lakestar::stage::{Stage, StageContext};
use lakestar::state::State;

/// Lakestar's benchmarks.
#[derive(Debug, Parser)]
#[command(name = "lakestar-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes a sales CSV of the retail example's shape.
    Generate {
        /// Where to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        size: Size,
    },
    /// Runs ingest, validate and mask on a generated sales CSV in an embedded S3 endpoint, on
    /// one core (each stage's process pinned with `taskset`, the S3 server kept off that core),
    /// printing each stage's figures and the chain's.
    Ingest {
        #[command(flatten)]
        size: Size,
        /// Run every stage in this process instead of one child process per stage (as
        /// Lambda does); per-stage peak RSS is then polluted by the earlier stages.
        #[arg(long)]
        in_process: bool,
        /// Also run the same job in DuckDB (`pip install duckdb`) on one thread pinned to one
        /// core, run both the chain and DuckDB again on all cores, and print the ratios.
        #[arg(long)]
        duckdb: bool,
        /// With `--duckdb`: how many times to run the chain and DuckDB, one right after the
        /// other, at each core count; every round's ratio is printed and the median kept (this
        /// shared machine's speed drifts by a third within an hour).
        #[arg(long, default_value_t = 1, requires = "duckdb")]
        rounds: usize,
        /// Where to keep the generated file and the embedded S3 folder (default: a temporary folder).
        #[arg(long)]
        work: Option<PathBuf>,
        /// Also load the curated rows into PostgreSQL through the load stage (a scratch database
        /// on this server) next to a bare COPY of the same rows, and print the ratio.
        #[arg(long, value_name = "POSTGRES_URL", num_args = 0..=1, default_missing_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        load: Option<String>,
    },
    /// Loads generated curated Parquet (1 000 000 fact rows and 200 000 dimension rows, 10 %
    /// of them changed, by default) into a fresh PostgreSQL database, next to a bare COPY of
    /// the same rows, and prints rows/s and the ratio.
    Load {
        /// Fact rows.
        #[arg(long, default_value_t = 1_000_000)]
        facts: u64,
        /// Rows of the large dimension (`dim_customer`).
        #[arg(long, default_value_t = 200_000)]
        dimension_rows: u64,
        /// Fraction of dimension rows whose tracked columns change in the second delivery.
        #[arg(long, default_value_t = 0.1)]
        changed: f64,
        /// A PostgreSQL URL whose server may create and drop a scratch database.
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        database: String,
        /// Where to keep the generated Parquet (default: a temporary folder).
        #[arg(long)]
        work: Option<PathBuf>,
    },
    /// Extracts a generated orders table from PostgreSQL as a source (gzip NDJSON pages into
    /// the embedded S3) next to `COPY … TO STDOUT` of the same rows, and prints rows/s and the
    /// ratio.
    Extract {
        /// Rows in the table.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Rows per page.
        #[arg(long, default_value_t = 50_000)]
        page_size: usize,
        /// Rounds of each, run alternately; the median is kept.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// A PostgreSQL URL whose server may create and drop a scratch database.
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        database: String,
    },
    /// Loads generated curated Parquet into a fresh SQLite file through the load stage (new
    /// facts into an empty table, then appended), next to a bare prepared INSERT per row in one
    /// transaction and the sqlite3 shell's `.import` of the same rows; prints rows/s.
    SqliteLoad {
        /// Fact rows per delivery.
        #[arg(long, default_value_t = 1_000_000)]
        facts: u64,
        /// Rows of the large dimension (`dim_customer`).
        #[arg(long, default_value_t = 200_000)]
        dimension_rows: u64,
        /// Rounds, medians kept.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Where to keep the generated Parquet and the databases (default: a temporary folder).
        #[arg(long)]
        work: Option<PathBuf>,
    },
    /// Validates one ingested sales file under contracts that differ only in their rules (no
    /// DQDL, the example's, 13 rules of every kind, the schema contract's type scan),
    /// alternately, and prints each one's time over the run without DQDL.
    Quality {
        #[command(flatten)]
        size: Size,
        /// Rounds of every variant, run alternately; medians are kept.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Where to keep the generated file and the embedded S3 folder (default: a temporary folder).
        #[arg(long)]
        work: Option<PathBuf>,
    },
    /// Starts each function's release binary as Lambda would and reports the time from process
    /// start to its first request for an event, and its size (build them first:
    /// `cargo build --release -p lakestar-trigger -p lakestar-ingest -p lakestar-validate -p lakestar-mask -p lakestar-load -p lakestar-extract`).
    ColdStart {
        /// Where the binaries are (default: this benchmark's own folder).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Starts per function.
        #[arg(long, default_value_t = 7)]
        runs: usize,
    },
    /// Everything in one run, for tracking over time: the chain with DuckDB beside it at each
    /// size (100 MB and 1 GB by default: peak RSS flat in the file's size), the chain's curated
    /// rows loaded next to a bare COPY, the dimension-merge and fact load benchmark, and the
    /// functions' cold starts and sizes (build them first:
    /// `cargo build --release -p lakestar-bench -p lakestar-trigger -p lakestar-ingest -p lakestar-validate -p lakestar-mask -p lakestar-load -p lakestar-extract`).
    /// Prints each part's table, a summary, and the whole as one JSON document.
    All {
        /// File sizes in megabytes, one chain run each.
        #[arg(long, value_delimiter = ',', default_values_t = [100, 1000])]
        megabytes: Vec<u64>,
        /// Rounds of the chain and DuckDB, one right after the other, on the first (smallest)
        /// file, whose one-core margin is within this machine's drift; larger files run once.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Fraction of deliberately bad rows in the generated files.
        #[arg(long, default_value_t = 0.02)]
        bad: f64,
        /// Seed of the generator.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// A PostgreSQL URL whose server may create and drop scratch databases.
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
        database: String,
        /// Where the function binaries are (default: this benchmark's own folder).
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Also write the JSON document to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Runs one stage against a running endpoint (used by `ingest`, one process per stage):
    /// reads the state document, writes it back with the stage's section, prints figures.
    Stage {
        /// `ingest`, `validate` or `mask`.
        stage: String,
        /// The S3 endpoint URL.
        #[arg(long)]
        endpoint: String,
        /// The state document.
        #[arg(long)]
        state: PathBuf,
    },
}

/// How much data to generate.
#[derive(Debug, Clone, clap::Args)]
struct Size {
    /// Size of the file in megabytes (10^6 bytes).
    #[arg(long, default_value_t = 100)]
    megabytes: u64,
    /// Stop after this many rows instead.
    #[arg(long)]
    rows: Option<u64>,
    /// Fraction of deliberately bad rows.
    #[arg(long, default_value_t = 0.02)]
    bad: f64,
    /// Seed of the generator: the same seed gives the same file.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `LAKESTAR_LOG=lakestar=debug` shows the stages' own timings (the load's steps, say).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LAKESTAR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Generate { out, size } => {
            let generated = generate_file(&out, &size)?;
            println!("{}: {} rows ({} bad), {} bytes", out.display(), generated.rows, generated.bad, generated.bytes);
            Ok(())
        }
        Command::Ingest { size, work, in_process, duckdb, rounds, load } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let figures = runtime.block_on(ingest(size, work, in_process, duckdb.then_some(rounds), load))?;
            println!("{figures}");
            Ok(())
        }
        Command::Load { facts, dimension_rows, changed, database, work } => {
            let temporary = tempfile::tempdir()?;
            let work = work.unwrap_or_else(|| temporary.path().to_path_buf());
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let figures = runtime.block_on(load::bench(load::LoadBench {
                facts,
                dimension_rows,
                changed,
                admin_url: database,
                work,
            }))?;
            println!("{figures}");
            Ok(())
        }
        Command::Extract { rows, page_size, rounds, database } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let figures = runtime.block_on(extract::bench(extract::ExtractBench {
                rows,
                page_size,
                rounds,
                admin_url: database,
            }))?;
            println!("{figures}");
            Ok(())
        }
        Command::SqliteLoad { facts, dimension_rows, rounds, work } => {
            let temporary = tempfile::tempdir()?;
            let work = work.unwrap_or_else(|| temporary.path().to_path_buf());
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let figures =
                runtime.block_on(sqlite::bench(sqlite::SqliteBench { facts, dimension_rows, rounds, work }))?;
            println!("{figures}");
            Ok(())
        }
        Command::Quality { size, rounds, work } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let figures = runtime.block_on(quality::bench(size, rounds, work))?;
            println!("{figures}");
            Ok(())
        }
        Command::ColdStart { bin_dir, runs } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let figures = runtime.block_on(coldstart::bench(&bin_folder(bin_dir)?, runs.max(1)))?;
            println!("{figures}");
            Ok(())
        }
        Command::All { megabytes, rounds, bad, seed, database, bin_dir, json } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let figures = runtime.block_on(all(megabytes, rounds, bad, seed, database, bin_folder(bin_dir)?))?;
            println!("{figures}");
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_vec_pretty(&figures)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Command::Stage { stage, endpoint, state } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(run_stage(&stage, &endpoint, &state))
        }
    }
}

/// The folder of the function binaries: given, or this benchmark's own.
fn bin_folder(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(dir) => Ok(dir),
        None => std::env::current_exe()?.parent().map(Path::to_path_buf).context("the benchmark's folder"),
    }
}

/// The figures of `stage` in an `ingest` result.
fn stage_figures<'a>(figures: &'a serde_json::Value, stage: &str) -> Option<&'a serde_json::Value> {
    figures["results"].as_array()?.iter().find(|line| line["stage"] == stage)
}

/// Every benchmark in one run, then a summary against the targets.
async fn all(
    megabytes: Vec<u64>,
    rounds: usize,
    bad: f64,
    seed: u64,
    database: String,
    bin_dir: PathBuf,
) -> anyhow::Result<serde_json::Value> {
    // Long on purpose: the whole benchmark's script, part after part, each printed as it runs.
    let mut chains = Vec::new();
    for (index, &size) in megabytes.iter().enumerate() {
        println!("\n== ingest → validate → mask on {size} MB, DuckDB beside it");
        let size = Size { megabytes: size, rows: None, bad, seed };
        // The chain's curated rows are loaded once, from the first (smallest) size.
        let load = (index == 0).then(|| database.clone());
        let rounds = if index == 0 { rounds } else { 1 };
        chains.push(ingest(size, None, false, Some(rounds), load).await?);
    }
    println!("\n== the load: a 10 % changed dimension and 1 000 000 facts, next to bare COPY");
    let temporary = tempfile::tempdir()?;
    let load = load::bench(load::LoadBench {
        facts: 1_000_000,
        dimension_rows: 200_000,
        changed: 0.1,
        admin_url: database,
        work: temporary.path().to_path_buf(),
    })
    .await?;
    println!("\n== cold start and size of each function");
    let built = coldstart::FUNCTIONS.iter().all(|function| bin_dir.join(function).exists());
    let cold = if built {
        coldstart::bench(&bin_dir, 7).await?
    } else {
        println!(
            "skipped: no function binaries in {} (cargo build --release -p lakestar-trigger -p lakestar-ingest -p lakestar-validate -p lakestar-mask -p lakestar-load -p lakestar-extract)",
            bin_dir.display()
        );
        serde_json::json!({ "cold_start": null })
    };

    println!("\n== summary (targets from DESIGN.md)");
    for (size, chain) in megabytes.iter().zip(&chains) {
        let seconds = |figures: Option<&serde_json::Value>| {
            figures.and_then(|figures| figures["seconds"].as_f64()).unwrap_or(f64::NAN)
        };
        let peak = |figures: Option<&serde_json::Value>| {
            figures.and_then(|figures| figures["peak_rss_bytes"].as_u64()).unwrap_or_default() as f64 / 1048576.0
        };
        let one = stage_figures(chain, "duckdb/1");
        let ours_one = stage_figures(chain, "chain/1");
        // Every round's ratio when there were several (the figures are the median round's).
        let every_round = |cores: usize| {
            let rounds: Vec<String> = chain["duckdb_ratios"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|comparison| comparison["cores"].as_u64() == Some(cores as u64))
                .flat_map(|comparison| comparison["rounds"].as_array().cloned().unwrap_or_default())
                .filter_map(|ratio| ratio.as_f64())
                .map(|ratio| format!("{ratio:.2}"))
                .collect();
            if rounds.len() > 1 {
                format!(", the median of {} rounds: {}", rounds.len(), rounds.join(", "))
            } else {
                String::new()
            }
        };
        println!(
            "chain {size:>5} MB on 1 core: {:.2} s, peak RSS {:.0} MiB | DuckDB 1 thread {:.2} s, {:.0} MiB | speed vs DuckDB {:.2} (target >= 1{})",
            seconds(ours_one),
            peak(ours_one),
            seconds(one),
            peak(one),
            seconds(one) / seconds(ours_one),
            every_round(1),
        );
        let available = std::thread::available_parallelism().map_or(1, usize::from);
        if available > 1 {
            let all = stage_figures(chain, &format!("duckdb/{available}"));
            let ours_all = stage_figures(chain, &format!("chain/{available}"));
            println!(
                "chain {size:>5} MB on {available} cores: {:.2} s, peak RSS {:.0} MiB | DuckDB {available} threads {:.2} s, {:.0} MiB | speed vs DuckDB {:.2}{}",
                seconds(ours_all),
                peak(ours_all),
                seconds(all),
                peak(all),
                seconds(all) / seconds(ours_all),
                every_round(available),
            );
        }
    }
    if let Some(chain_load) = chains.first().and_then(|chain| stage_figures(chain, "load")) {
        println!(
            "load of the chain's curated facts: {:.2} of bare COPY's speed ({:.2} of a bare binary COPY's)",
            chain_load["ratio"].as_f64().unwrap_or(f64::NAN),
            chain_load["ratio_binary"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!(
        "load benchmark: dimension first delivery {:.2}, merge {:.2}, facts {:.2}, both {:.2} of bare COPY's speed (target >= 0.5); \
         merge {:.2}, facts {:.2}, both {:.2} of a bare binary COPY's",
        load["ratio_dimension_first"].as_f64().unwrap_or(f64::NAN),
        load["ratio_dimension"].as_f64().unwrap_or(f64::NAN),
        load["ratio_fact"].as_f64().unwrap_or(f64::NAN),
        load["ratio_combined"].as_f64().unwrap_or(f64::NAN),
        load["ratio_binary_dimension"].as_f64().unwrap_or(f64::NAN),
        load["ratio_binary_fact"].as_f64().unwrap_or(f64::NAN),
        load["ratio_binary_combined"].as_f64().unwrap_or(f64::NAN),
    );
    let functions = cold["cold_start"].as_array().cloned().unwrap_or_default();
    if functions.is_empty() {
        println!("cold start: not measured (no function binaries)");
    }
    let slowest = functions.iter().filter_map(|function| function["ready_ms_median"].as_f64()).fold(0.0, f64::max);
    let heaviest =
        functions.iter().filter_map(|function| function["deflated_bytes"].as_u64()).max().unwrap_or_default();
    if !functions.is_empty() {
        println!(
            "cold start: slowest function ready in {slowest:.1} ms (target < 50); largest zip {:.1} MB (target < 15)",
            heaviest as f64 / 1e6
        );
    }
    Ok(serde_json::json!({
        "bench": "all",
        "chains": chains,
        "load": load,
        "cold_start": cold["cold_start"],
    }))
}

fn generate_file(path: &Path, size: &Size) -> anyhow::Result<generate::Generated> {
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let generated =
        generate::sales(&mut out, size.rows.unwrap_or(u64::MAX), size.megabytes * 1_000_000, size.bad, size.seed)?;
    out.flush()?;
    Ok(generated)
}

/// Prints one line of the table and returns it as JSON.
#[allow(clippy::too_many_arguments)]
fn report(
    stage: &str,
    megabytes: f64,
    rows: u64,
    rejected: u64,
    seconds: f64,
    peak: u64,
    out_bytes: u64,
    parts: usize,
) -> serde_json::Value {
    println!(
        "{stage:<11} {megabytes:<9.1} {rows:<10} {rejected:<9} {seconds:<8.2} {:<7.1} {:<10.0} {:<13.1} {:<7.1} {parts}",
        megabytes / seconds,
        rows as f64 / seconds,
        peak as f64 / (1024.0 * 1024.0),
        out_bytes as f64 / 1e6,
    );
    serde_json::json!({
        "stage": stage, "rows": rows, "rejected": rejected, "seconds": seconds,
        "mb_per_second": megabytes / seconds, "rows_per_second": rows as f64 / seconds,
        "peak_rss_bytes": peak, "out_bytes": out_bytes, "parts": parts,
    })
}

/// The summed size of objects.
async fn total_size(s3: &EmbeddedS3, keys: &[String]) -> anyhow::Result<u64> {
    let mut total = 0;
    for key in keys {
        let head = s3.client().head_object().bucket("bench").key(key).send().await?;
        total += head.content_length().unwrap_or(0) as u64;
    }
    Ok(total)
}

/// The process's peak resident set size in bytes (`VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kilobytes| kilobytes * 1024)
}

/// Resets the peak RSS so that what follows is measured alone (Linux `clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn contract() -> anyhow::Result<Contract> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail/pipeline.toml");
    Ok(Contract::load(&path)?)
}

fn bench_key() -> anyhow::Result<lakestar::mask::MaskingKey> {
    Ok(lakestar::mask::MaskingKey::new(b"benchmark-key-0123456789abcdef-0123".to_vec(), "v1")?)
}

/// One run of ingest → validate → mask on the benchmark's file.
struct Chain<'a> {
    lake: &'a Lake,
    s3: &'a EmbeddedS3,
    contract: &'a Contract,
    run: &'a RunDescriptor,
    work: &'a Path,
    in_process: bool,
}

impl Chain<'_> {
    /// Runs the three stages on `cores` cores (each stage's process pinned to them, the
    /// embedded S3 server, which stands in for a remote service, kept off them) and returns
    /// each stage's figures and the chain's, labelled `<stage>/<cores>`, with what the chain
    /// produced.
    async fn measure(&self, cores: usize, megabytes: f64) -> anyhow::Result<Measured> {
        let state_path = self.work.join("state.json");
        std::fs::write(&state_path, serde_json::to_vec(&serde_json::json!({ "run": self.run }))?)?;
        let endpoint = self.s3.endpoint();
        let available = std::thread::available_parallelism().map_or(1, usize::from);
        let pinned = Pinning::new(cores, available);
        let context = StageContext::new(self.lake.clone(), self.contract.clone()).with_masking_key(bench_key()?);
        let stage = |name: &str| -> anyhow::Result<(f64, u64)> {
            if !self.in_process {
                return tokio::task::block_in_place(|| child_stage(name, &endpoint, &state_path, &pinned));
            }
            reset_peak_rss();
            let runtime_handle = tokio::runtime::Handle::current();
            let started = Instant::now();
            let state = tokio::task::block_in_place(|| {
                runtime_handle.block_on(run_stage_on(name, &context, &std::fs::read(&state_path)?))
            })?;
            std::fs::write(&state_path, serde_json::to_vec(&state)?)?;
            Ok((started.elapsed().as_secs_f64(), peak_rss()))
        };
        pinned.keep_parent_off()?;
        let timings = (|| anyhow::Ok((stage("ingest")?, stage("validate")?, stage("mask")?)))();
        pinned.release_parent()?;
        let ((ingest_seconds, ingest_peak), (validate_seconds, validate_peak), (mask_seconds, mask_peak)) = timings?;

        let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&state_path)?)?;
        let ingested: lakestar::ingest::IngestOutput = serde_json::from_value(state["ingest"].clone())?;
        let validated: lakestar::validate::ValidateOutput = serde_json::from_value(state["validate"].clone())?;
        let masked: lakestar::mask::MaskOutput = serde_json::from_value(state["mask"].clone())?;
        anyhow::ensure!(
            validated.received == validated.valid + validated.rejected,
            "rows lost: received ≠ valid + rejected"
        );
        let label = |stage: &str| format!("{stage}/{cores}");
        let mut lines = Vec::new();
        let raw_bytes = total_size(self.s3, &ingested.raw).await?;
        lines.push(report(
            &label("ingest"),
            megabytes,
            ingested.rows,
            ingested.rejected,
            ingest_seconds,
            ingest_peak,
            raw_bytes,
            ingested.raw.len(),
        ));
        let processed_bytes = total_size(self.s3, &validated.processed).await?;
        lines.push(report(
            &label("validate"),
            megabytes,
            validated.received,
            validated.rejected,
            validate_seconds,
            validate_peak,
            processed_bytes,
            validated.processed.len(),
        ));
        let curated_keys = lakestar::mask::CuratedManifest::read(self.lake, &masked.manifest).await?.parts;
        let curated_bytes = total_size(self.s3, &curated_keys).await?;
        // Mask's input is the processed data: its MB/s is over the processed bytes.
        lines.push(report(
            &label("mask"),
            processed_bytes as f64 / 1e6,
            masked.rows,
            0,
            mask_seconds,
            mask_peak,
            curated_bytes,
            curated_keys.len(),
        ));
        let seconds = ingest_seconds + validate_seconds + mask_seconds;
        lines.push(report(
            &label("chain"),
            megabytes,
            validated.received,
            validated.rejected,
            seconds,
            ingest_peak.max(validate_peak).max(mask_peak),
            curated_bytes,
            curated_keys.len(),
        ));
        Ok(Measured { lines, seconds, validated, curated_keys, masked_rows: masked.rows })
    }
}

/// What one run of the chain printed and produced.
struct Measured {
    /// Each stage's line and the chain's, as JSON.
    lines: Vec<serde_json::Value>,
    /// The chain's seconds.
    seconds: f64,
    validated: lakestar::validate::ValidateOutput,
    curated_keys: Vec<String>,
    masked_rows: u64,
}

/// Which CPUs a measured process may use (`taskset`): the first `cores`, or all of them.
struct Pinning {
    cores: usize,
    available: usize,
}

impl Pinning {
    fn new(cores: usize, available: usize) -> Pinning {
        Pinning { cores: cores.min(available), available }
    }

    /// The CPUs of the measured process, when it is pinned.
    fn measured(&self) -> Option<String> {
        (self.cores < self.available).then(|| format!("0-{}", self.cores - 1))
    }

    /// How a measured process is started, for an error message.
    fn how(&self) -> String {
        match self.measured() {
            Some(cpus) => format!(" pinned to CPUs {cpus} with taskset (util-linux)"),
            None => String::new(),
        }
    }

    /// A command that runs `program` on the measured CPUs.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        match self.measured() {
            Some(cpus) => {
                let mut command = std::process::Command::new("taskset");
                command.args(["-c", &cpus]).arg(program);
                command
            }
            None => std::process::Command::new(program),
        }
    }

    /// Moves every thread of this process (the embedded S3 server) off the measured CPUs.
    fn keep_parent_off(&self) -> anyhow::Result<()> {
        if self.measured().is_some() {
            self.pin_parent(&format!("{}-{}", self.cores, self.available - 1))?;
        }
        Ok(())
    }

    /// Lets this process use every CPU again.
    fn release_parent(&self) -> anyhow::Result<()> {
        if self.measured().is_some() {
            self.pin_parent(&format!("0-{}", self.available - 1))?;
        }
        Ok(())
    }

    fn pin_parent(&self, cpus: &str) -> anyhow::Result<()> {
        let status = std::process::Command::new("taskset")
            .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .context("running taskset (util-linux) to pin the benchmark to its CPUs")?;
        anyhow::ensure!(status.success(), "taskset could not pin the benchmark to CPUs {cpus}");
        Ok(())
    }
}

/// One stage in this process: state in, state out, figures on stdout as JSON.
async fn run_stage(stage: &str, endpoint: &str, state_path: &Path) -> anyhow::Result<()> {
    let lake = Lake::new(EmbeddedS3::client_for(endpoint), "bench");
    let context = StageContext::new(lake, contract()?).with_masking_key(bench_key()?);
    let started = Instant::now();
    let state = run_stage_on(stage, &context, &std::fs::read(state_path)?).await?;
    let seconds = started.elapsed().as_secs_f64();
    std::fs::write(state_path, serde_json::to_vec(&state)?)?;
    println!("{}", serde_json::json!({ "seconds": seconds, "peak_rss_bytes": peak_rss() }));
    Ok(())
}

/// Runs the stage `name` through the pipeline's one dispatch on a state document; returns
/// the state extended by the stage's section.
async fn run_stage_on(name: &str, context: &StageContext, state: &[u8]) -> anyhow::Result<State> {
    let stage = Stage::parse(name).with_context(|| format!("unknown stage {name}: use ingest, validate or mask"))?;
    let mut state = State::from_value(serde_json::from_slice(state)?)?;
    stage.run(context, &state).await?.record(&mut state);
    Ok(state)
}

/// Runs a stage in a child process and returns its seconds and peak RSS.
fn child_stage(stage: &str, endpoint: &str, state: &Path, pinned: &Pinning) -> anyhow::Result<(f64, u64)> {
    let output = pinned
        .command(std::env::current_exe()?)
        .args(["stage", stage, "--endpoint", endpoint, "--state"])
        .arg(state)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("starting the {stage} stage{}", pinned.how()))?;
    anyhow::ensure!(output.status.success(), "the {stage} stage failed");
    let figures: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    Ok((figures["seconds"].as_f64().unwrap_or_default(), figures["peak_rss_bytes"].as_u64().unwrap_or_default()))
}

/// Runs `duckdb_job.py` on the generated file with `threads` threads, pinned to as many
/// cores, and returns its figures.
fn duckdb_job(source: &Path, work: &Path, threads: usize, available: usize) -> anyhow::Result<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("duckdb_job.py");
    let out = work.join(format!("duckdb-{threads}"));
    std::fs::create_dir_all(&out)?;
    let output = Pinning::new(threads, available)
        .command("python3")
        .arg(script)
        .arg(source)
        .arg(&out)
        .arg(threads.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("starting python3 for DuckDB{}", Pinning::new(threads, available).how()))?;
    anyhow::ensure!(output.status.success(), "the DuckDB job failed (pip install duckdb)");
    Ok(serde_json::from_slice(&output.stdout)?)
}

async fn ingest(
    size: Size,
    work: Option<PathBuf>,
    in_process: bool,
    duckdb: Option<usize>,
    load: Option<String>,
) -> anyhow::Result<serde_json::Value> {
    // Long on purpose: the benchmark's script, step after step, each printed as it runs.
    let temporary = tempfile::tempdir()?;
    let work = work.unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&work)?;
    let source = work.join("sales.csv");
    let started = Instant::now();
    let generated = generate_file(&source, &size)?;
    eprintln!(
        "generated {} rows, {} bytes in {:.1}s",
        generated.rows,
        generated.bytes,
        started.elapsed().as_secs_f64()
    );

    let s3 = EmbeddedS3::start(&work.join("s3")).await?;
    s3.create_bucket("bench").await?;
    let lake = Lake::new(s3.client(), "bench");
    let key = "landing/bench/sales.csv";
    let body = ByteStream::from_path(&source).await?;
    s3.client().put_object().bucket("bench").key(key).body(body).send().await.context("uploading the file")?;
    if duckdb.is_none() {
        std::fs::remove_file(&source)?;
    }

    let contract = contract()?;
    let run = RunDescriptor::new("sales", "bench", key, None, None, generated.bytes, chrono::Utc::now());
    let megabytes = generated.bytes as f64 / 1e6;
    let available = std::thread::available_parallelism().map_or(1, usize::from);
    // One core is the target's condition (DESIGN.md); with DuckDB beside it, all cores too.
    let core_counts: Vec<usize> = if in_process {
        vec![available]
    } else if duckdb.is_some() {
        vec![1, available]
    } else {
        vec![1]
    };
    println!("stage       file_MB   rows       rejected  seconds  MB/s    rows/s     peak_RSS_MiB  out_MB  parts");
    let mut results = Vec::new();
    let mut comparisons = Vec::new();
    let mut last = None;
    let rounds = duckdb.unwrap_or(1).max(1);
    for cores in core_counts.iter().copied().collect::<std::collections::BTreeSet<_>>() {
        // Each round runs the chain, then DuckDB right after it, so that both see the same
        // machine; the round with the median ratio is reported.
        let mut measured_rounds = Vec::new();
        for round in 1..=rounds {
            if rounds > 1 {
                println!("round {round} of {rounds}, {cores} core(s)");
            }
            let chain = Chain { lake: &lake, s3: &s3, contract: &contract, run: &run, work: &work, in_process };
            let mut measured = chain.measure(cores, megabytes).await?;
            let mut lines = std::mem::take(&mut measured.lines);
            let mut ratio = None;
            if duckdb.is_some() {
                let figures = duckdb_job(&source, &work, cores, available)?;
                let seconds = figures["seconds"].as_f64().unwrap_or(f64::NAN);
                let peak = figures["peak_rss_bytes"].as_u64().unwrap_or_default();
                let mut line = report(&format!("duckdb/{cores}"), megabytes, generated.rows, 0, seconds, peak, 0, 0);
                line["valid"] = figures["valid"].clone();
                let speed = seconds / measured.seconds;
                println!(
                    "            Lakestar chain / DuckDB, {cores} core(s) each: {speed:.2}x the speed (valid rows: {} vs {})",
                    measured.validated.valid, figures["valid"]
                );
                anyhow::ensure!(
                    figures["valid"].as_u64() == Some(measured.validated.valid),
                    "DuckDB kept {} valid rows and the chain {}: the jobs differ",
                    figures["valid"],
                    measured.validated.valid
                );
                lines.push(line);
                ratio = Some(speed);
            }
            measured_rounds.push((ratio, lines));
            last = Some(measured);
        }
        let ratios: Vec<f64> = measured_rounds.iter().filter_map(|(ratio, _)| *ratio).collect();
        let mut order: Vec<usize> = (0..measured_rounds.len()).collect();
        order.sort_by(|&a, &b| {
            measured_rounds[a].0.unwrap_or_default().total_cmp(&measured_rounds[b].0.unwrap_or_default())
        });
        let median = order[order.len() / 2];
        if rounds > 1 {
            println!(
                "            median of {rounds} rounds on {cores} core(s): {:.2}x (round {}; all: {})",
                measured_rounds[median].0.unwrap_or(f64::NAN),
                median + 1,
                ratios.iter().map(|ratio| format!("{ratio:.2}")).collect::<Vec<_>>().join(", ")
            );
        }
        if !ratios.is_empty() {
            comparisons
                .push(serde_json::json!({ "cores": cores, "ratio": measured_rounds[median].0, "rounds": ratios }));
        }
        results.append(&mut measured_rounds.swap_remove(median).1);
    }
    let Measured { validated, curated_keys, masked_rows, .. } = last.context("no chain ran")?;
    if let Some(admin_url) = load {
        let files =
            |spooled: Vec<(String, std::fs::File)>| spooled.into_iter().map(|(_, file)| file).collect::<Vec<_>>();
        let load_files = files(lake.spool(&curated_keys).await?);
        let copy_files = files(lake.spool(&curated_keys).await?);
        let load::CuratedLoad { load_seconds, copy_seconds, binary_copy_seconds, counts } =
            load::curated(&admin_url, &contract, &run, load_files, copy_files).await?;
        let rows = counts.inserted + counts.updated + counts.unchanged;
        println!(
            "load      {rows} curated rows into PostgreSQL: {load_seconds:.2} s ({:.0} rows/s); bare COPY {copy_seconds:.2} s ({:.0} rows/s); load / COPY speed {:.2}; bare binary COPY {binary_copy_seconds:.2} s, load / binary COPY {:.2}",
            rows as f64 / load_seconds,
            rows as f64 / copy_seconds,
            copy_seconds / load_seconds,
            binary_copy_seconds / load_seconds
        );
        results.push(serde_json::json!({"stage": "load", "rows": rows, "seconds": load_seconds, "copy_seconds": copy_seconds, "ratio": copy_seconds / load_seconds, "binary_copy_seconds": binary_copy_seconds, "ratio_binary": binary_copy_seconds / load_seconds}));
    }
    anyhow::ensure!(masked_rows == validated.valid, "every valid row is curated");
    Ok(serde_json::json!({
        "bench": "ingest+validate+mask",
        "file_bytes": generated.bytes,
        "results": results,
        "duckdb_ratios": comparisons,
        "rejects_per_rule": validated.rejects_per_rule,
    }))
}
