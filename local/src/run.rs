//! `lakestar run`: drops an example's landing files into an embedded S3 bucket and runs
//! each through the stages that exist, printing a summary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use lakestar::contract::Contract;
use lakestar::lake::{EmbeddedS3, Lake};
use lakestar::run::RunDescriptor;
use lakestar_ingest::IngestFunction;
use lakestar_mask::MaskFunction;
use lakestar_validate::ValidateFunction;
use lambda_runtime::{Context as LambdaContext, LambdaEvent};

/// The lake bucket of the offline stack.
pub const BUCKET: &str = "lakestar-lake";

/// Arguments of `lakestar run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Example directories (holding `pipeline.toml` and `landing/`) or single landing files.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// The stack's home: the embedded S3 keeps its buckets under `<home>/s3`.
    #[arg(long, default_value = ".lakestar")]
    home: PathBuf,
    /// The contract; default `pipeline.toml` in the first example directory.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// One landing file and the key it lands under.
struct Drop {
    path: PathBuf,
    key: String,
}

/// Runs the command; the exit code says whether every run succeeded.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => path.clone(),
        None => args
            .inputs
            .iter()
            .find(|input| input.is_dir())
            .map(|dir| dir.join("pipeline.toml"))
            .context("give --config, or an example directory holding pipeline.toml")?,
    };
    let contract = Contract::load(&config)?;
    let drops = collect_drops(&args.inputs)?;
    if drops.is_empty() {
        bail!(
            "no landing files found under {}: put them in a `landing/` folder",
            args.inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }

    let s3 = EmbeddedS3::start(&args.home.join("s3")).await?;
    s3.create_bucket(BUCKET).await?;
    let lake = Lake::new(s3.client(), BUCKET);
    let contract_text = std::fs::read(&config).with_context(|| format!("reading {}", config.display()))?;
    lake.put_bytes(lakestar::env::CONFIG_KEY, contract_text, "application/toml").await?;
    let ingest = IngestFunction::new(lake.clone(), contract.clone());
    let validate = ValidateFunction::new(lake.clone(), contract.clone());
    let key = lakestar::mask::MaskingKey::local(&args.home, &contract.masking.key_version)?;
    let mask = MaskFunction::new(lake.clone(), contract.clone(), key);

    println!("Embedded S3 at {} (bucket {BUCKET}, folder {})", s3.endpoint(), s3.root().display());
    println!("{:<38} {:<10} {:<18} {:>6} {:>6} {:>6}", "run", "dataset", "status", "rows", "valid", "quar.");
    let mut failures = 0;
    for drop in &drops {
        let bytes = std::fs::read(&drop.path).with_context(|| format!("reading {}", drop.path.display()))?;
        let size = bytes.len() as u64;
        lake.put_bytes(&drop.key, bytes, "application/octet-stream").await?;
        let dataset = match contract.dataset_for_key(&drop.key) {
            Ok(dataset) => dataset.name.clone(),
            Err(error) => {
                failures += 1;
                println!("{:<38} {:<10} {:<18} {error}", drop.key, "-", "skipped");
                continue;
            }
        };
        let now = chrono::Utc::now();
        let time = now - chrono::Duration::nanoseconds(i64::from(chrono::Timelike::nanosecond(&now)));
        let run = RunDescriptor::new(&dataset, BUCKET, &drop.key, None, None, size, time);
        let mut state = serde_json::json!({ "run": run });
        let outcome = async {
            let ingested = ingest.handle(LambdaEvent::new(state.clone(), LambdaContext::default())).await?;
            state["ingest"] = serde_json::to_value(&ingested).unwrap_or_default();
            let validated = validate.handle(LambdaEvent::new(state.clone(), LambdaContext::default())).await?;
            if validated.gate != "pass" {
                return Ok((validated, None));
            }
            state["validate"] = serde_json::to_value(&validated).unwrap_or_default();
            let masked = mask.handle(LambdaEvent::new(state.clone(), LambdaContext::default())).await?;
            Ok::<_, lambda_runtime::Diagnostic>((validated, Some(masked)))
        }
        .await;
        match outcome {
            Ok((validated, masked)) => {
                let passed = validated.gate == "pass" && masked.is_some();
                if !passed {
                    failures += 1;
                }
                let status = if passed { "masked" } else { "QualityGateFailed" };
                println!(
                    "{:<38} {:<10} {:<18} {:>6} {:>6} {:>6}",
                    run.id, dataset, status, validated.received, validated.valid, validated.rejected
                );
                if !passed {
                    println!("    cause: {}", validated.cause);
                }
            }
            Err(error) => {
                failures += 1;
                println!("{:<38} {:<10} {:<18} {}", run.id, dataset, error.error_type, error.error_message);
            }
        }
    }
    println!(
        "Load is not built yet: raw/, processed/, curated/, archive/ and quarantine/ are under {}.",
        s3.root().join(BUCKET).display()
    );
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Every file under each input's `landing/` folder (or the file itself), keyed
/// `landing/<relative path>`, in key order as a delivery would land.
fn collect_drops(inputs: &[PathBuf]) -> anyhow::Result<Vec<Drop>> {
    let mut drops = Vec::new();
    for input in inputs {
        if input.is_file() {
            let name = input.file_name().context("a file name")?.to_string_lossy();
            drops.push(Drop { path: input.clone(), key: format!("landing/{name}") });
            continue;
        }
        let landing = input.join("landing");
        let root = if landing.is_dir() { landing } else { input.clone() };
        walk(&root, &root, &mut drops)?;
    }
    drops.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(drops)
}

fn walk(root: &Path, dir: &Path, drops: &mut Vec<Drop>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(root, &path, drops)?;
        } else if !path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.')) {
            let relative = path.strip_prefix(root).context("a path under the landing folder")?;
            let key = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            drops.push(Drop { path, key: format!("landing/{key}") });
        }
    }
    Ok(())
}
