//! `lakestar scan`: the PII leak guard over files of any format ingest reads, local or in S3.
//! A file it cannot read fails the scan: a check of personal data that could not look must
//! not pass.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use lakestar::mask::scan::{self, Finding};

/// Scans `target` (a file, a folder, or `s3://bucket/prefix`); exits non-zero when any value
/// looks like personal data. Prints files, columns, kinds and counts, never the values.
pub fn scan(target: &str) -> anyhow::Result<ExitCode> {
    let mut hits = 0usize;
    let mut files = 0usize;
    let mut unreadable = 0usize;
    let mut report = |name: &str, findings: Result<Vec<Finding>, String>| match findings {
        Ok(findings) => {
            files += 1;
            for finding in findings {
                hits += 1;
                println!(
                    "{name}: column `{}`: {} value(s) look like {}",
                    finding.column,
                    finding.count,
                    finding.kind.name()
                );
            }
        }
        Err(error) => {
            unreadable += 1;
            eprintln!("{name}: cannot be scanned: {error}");
        }
    };
    if let Some(location) = target.strip_prefix("s3://") {
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(async {
            let lake = lakestar::lake::Lake::new(
                lakestar::function::s3_client(lakestar::config::Environment::get()).await,
                bucket,
            );
            for key in lake.list(prefix).await? {
                if !scanned(&key) {
                    continue;
                }
                let spool = tempfile::tempfile()?;
                lake.download(&key, spool.try_clone()?).await?;
                report(&format!("s3://{bucket}/{key}"), scan_file(&key, spool));
            }
            anyhow::Ok(())
        })?;
    } else {
        let mut paths = Vec::new();
        collect(Path::new(target), &mut paths)?;
        for path in paths {
            let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            report(&path.display().to_string(), scan_file(&path.to_string_lossy(), file));
        }
    }
    println!("scanned {files} file(s): {hits} column finding(s)");
    if unreadable > 0 {
        println!("{unreadable} file(s) could not be scanned (above): the check fails");
        return Ok(ExitCode::from(2));
    }
    Ok(if hits == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn scan_file(name: &str, file: std::fs::File) -> Result<Vec<Finding>, String> {
    scan::scan_file(name, file)
}

/// Whether a file's name is of a format [`scan::scan_file`] reads.
fn scanned(name: &str) -> bool {
    let lowered = name.to_ascii_lowercase();
    let plain = lowered.strip_suffix(".gz").unwrap_or(&lowered);
    scan::SCANNED.iter().any(|ending| plain.ends_with(ending))
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("listing {}", path.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect(&entry, out)?;
        } else if scanned(&entry.to_string_lossy()) {
            out.push(entry);
        }
    }
    Ok(())
}
