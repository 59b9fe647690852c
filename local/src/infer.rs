//! `lakestar infer <files…>`: a contract drafted from sample files (see `lakestar::infer`),
//! written to `--out` or printed, and checked before it is written.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use lakestar::contract::Contract;
use lakestar::infer::{DraftOptions, Sample};

use crate::dry_run::upload;
use lakestar::dry_run::Scratch;

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
    let start = first_bytes(file)?;
    match line_prefix(file, rows)? {
        Some((prefix, size)) => {
            let read = prefix.len() as u64;
            scratch.lake.put_bytes(&key, prefix, "application/octet-stream").await?;
            let mut sample = lakestar::infer::read_sample(&scratch.lake, &key, read, &start, rows).await?;
            sample.cut = Some((read, size));
            Ok(sample)
        }
        None => {
            let size = upload(&scratch.lake, file, &key).await?;
            Ok(lakestar::infer::read_sample(&scratch.lake, &key, size, &start, rows).await?)
        }
    }
}

/// For a plain (not compressed) CSV or NDJSON file longer than `rows` rows: its first lines
/// (a header and `rows` rows) and the file's size, so that a large file is not read whole.
/// `None` for other files and short ones.
fn line_prefix(file: &Path, rows: usize) -> anyhow::Result<Option<(Vec<u8>, u64)>> {
    use std::io::BufRead;
    let name = file.to_string_lossy().to_lowercase();
    let line_based = [".csv", ".tsv", ".txt", ".ndjson", ".jsonl"].iter().any(|extension| name.ends_with(extension));
    let size = std::fs::metadata(file)?.len();
    if !line_based || first_bytes_are_gzip(file)? {
        return Ok(None);
    }
    let mut reader = std::io::BufReader::new(std::fs::File::open(file)?);
    let mut prefix = Vec::new();
    for _ in 0..=rows {
        if reader.read_until(b'\n', &mut prefix)? == 0 {
            return Ok(None);
        }
    }
    Ok(((prefix.len() as u64) < size).then_some((prefix, size)))
}

fn first_bytes_are_gzip(file: &Path) -> anyhow::Result<bool> {
    let mut head = Vec::new();
    std::fs::File::open(file)?.take(2).read_to_end(&mut head)?;
    Ok(head == [0x1f, 0x8b])
}

/// The first 64 KiB of the file's text (decompressed when it is gzip), for its encoding.
fn first_bytes(file: &Path) -> anyhow::Result<Vec<u8>> {
    let source = std::fs::File::open(file)?;
    let mut reader: Box<dyn Read> = if first_bytes_are_gzip(file)? {
        Box::new(flate2::read::MultiGzDecoder::new(source))
    } else {
        Box::new(source)
    };
    let mut start = Vec::new();
    // A damaged gzip stream is ingest's to report; its readable start is enough here.
    let _ = reader.by_ref().take(64 * 1024).read_to_end(&mut start);
    Ok(start)
}
