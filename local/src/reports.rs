//! The lake's quality reports as the offline stack keeps them: files under the home's
//! embedded S3 folder (`curated/_quality/<dataset>/run=<run>.json`), read without a server.

use std::path::Path;

use anyhow::Context as _;
use lakestar::load::QualityReport;

/// The reports of a dataset (or of every dataset), in the order their files landed.
pub fn reports(home: &Path, dataset: Option<&str>) -> anyhow::Result<Vec<QualityReport>> {
    let root = home.join("s3").join(crate::stack::BUCKET).join("curated/_quality");
    let mut reports = Vec::new();
    let Ok(folders) = std::fs::read_dir(&root) else { return Ok(reports) };
    for folder in folders {
        let folder = folder.with_context(|| format!("reading {}", root.display()))?;
        let name = folder.file_name().to_string_lossy().into_owned();
        // `_deliveries` and other folders of the lake's own start with `_`.
        if name.starts_with('_') || dataset.is_some_and(|wanted| wanted != name) || !folder.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(folder.path()).with_context(|| format!("reading {}", folder.path().display()))? {
            let path = file?.path();
            if path.extension().is_none_or(|extension| extension != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let report: QualityReport =
                serde_json::from_str(&text).with_context(|| format!("{} is not a quality report", path.display()))?;
            reports.push(report);
        }
    }
    reports.sort_by(|a, b| a.landed_at.cmp(&b.landed_at).then_with(|| a.run.cmp(&b.run)));
    Ok(reports)
}

/// The drift a report counts: columns added and missing, and values kept as null.
pub fn drift_count(report: &QualityReport) -> u64 {
    report.drift.added.len() as u64
        + report.drift.missing.len() as u64
        + report.schema_contract.unreadable_values.values().sum::<u64>()
}
