//! `lakestar infer <files…>`: a contract drafted from sample files (see `lakestar::infer`),
//! written to `--out` or printed, and checked before it is written.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use lakestar::contract::Contract;
use lakestar::infer::{DraftOptions, Sample};

use crate::dry_run::{Scratch, upload};

/// `lakestar infer`'s arguments.
#[derive(Debug, clap::Args)]
pub struct InferArgs {
    /// Sample files of one dataset (any format ingest reads, gzip or not); several files with
    /// different headers give aliases.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The dataset's name; by default from the first file's name.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Where to write the draft; printed when absent.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace `--out` if it exists.
    #[arg(long)]
    pub force: bool,
    /// At most this many rows per file are looked at.
    #[arg(long, default_value_t = 100_000)]
    pub sample_rows: usize,
}

pub fn infer(args: InferArgs) -> anyhow::Result<ExitCode> {
    if let Some(out) = &args.out
        && out.exists()
        && !args.force
    {
        bail!("{} exists: give --force to replace it, or another --out", out.display());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let samples = runtime.block_on(async {
        let scratch = Scratch::start().await?;
        let mut samples = Vec::new();
        for file in &args.files {
            samples.push(
                sample(&scratch, file, args.sample_rows)
                    .await
                    .with_context(|| format!("reading {}", file.display()))?,
            );
        }
        anyhow::Ok(samples)
    })?;
    let options = DraftOptions { dataset: args.dataset.clone(), sample_rows: args.sample_rows };
    let draft = lakestar::infer::draft(samples, &options)?;
    let text = draft.to_toml();
    if let Err(problems) = Contract::parse("the draft", &text) {
        bail!("the draft does not pass `lakestar check` (a bug in infer; please report it): {problems}");
    }
    match &args.out {
        Some(out) => {
            std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
            let first = args.files[0].display();
            eprintln!(
                "Wrote {} (dataset {}, {} columns). Next:\n  lakestar check {}\n  lakestar validate {first} --contract {}",
                out.display(),
                draft.dataset,
                draft.columns.len(),
                out.display(),
                out.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// One file through ingest in the scratch lake.
async fn sample(scratch: &Scratch, file: &Path, rows: usize) -> anyhow::Result<Sample> {
    let key = lakestar_local::landing::file_key(file)?;
    let size = upload(&scratch.lake, file, &key).await?;
    let start = first_bytes(file)?;
    Ok(lakestar::infer::read_sample(&scratch.lake, &key, size, &start, rows).await?)
}

/// The first 64 KiB of the file's text (decompressed when it is gzip), for its encoding.
fn first_bytes(file: &Path) -> anyhow::Result<Vec<u8>> {
    let mut head = Vec::new();
    std::fs::File::open(file)?.take(2).read_to_end(&mut head)?;
    let source = std::fs::File::open(file)?;
    let mut reader: Box<dyn Read> =
        if head == [0x1f, 0x8b] { Box::new(flate2::read::MultiGzDecoder::new(source)) } else { Box::new(source) };
    let mut start = Vec::new();
    // A damaged gzip stream is ingest's to report; its readable start is enough here.
    let _ = reader.by_ref().take(64 * 1024).read_to_end(&mut start);
    Ok(start)
}
