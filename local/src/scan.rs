//! `lakestar scan`: the PII leak guard over any Parquet or CSV files, local or in S3.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use lakestar::mask::scan::{self, Finding};

/// Scans `target` (a file, a folder, or `s3://bucket/prefix`); exits non-zero when any value
/// looks like personal data. Prints files, columns, kinds and counts, never the values.
pub fn scan(target: &str) -> anyhow::Result<ExitCode> {
    let mut hits = 0usize;
    let mut files = 0usize;
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
        Err(error) => eprintln!("{name}: skipped: {error}"),
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
                if !(key.ends_with(".parquet") || key.ends_with(".csv")) {
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
    Ok(if hits == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn scan_file(name: &str, file: std::fs::File) -> Result<Vec<Finding>, String> {
    if name.ends_with(".parquet") { scan::scan_parquet(file) } else { scan::scan_csv(file) }
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
        } else if entry.extension().is_some_and(|extension| extension == "parquet" || extension == "csv") {
            out.push(entry);
        }
    }
    Ok(())
}
