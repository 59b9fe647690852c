//! `lakestar quality [dataset]`: each run's quality over time, from the quality reports in
//! the lake (`curated/_quality/<dataset>/run=<run>.json`), oldest first.

use std::path::Path;
use std::process::ExitCode;

use lakestar::quality::QUARANTINED;
use lakestar_local::reports::{drift_count, reports};

use crate::run::home_flag;

/// `lakestar quality [dataset] --home DIR`.
pub fn quality(home: &Path, dataset: Option<&str>) -> anyhow::Result<ExitCode> {
    let reports = reports(home, dataset)?;
    if reports.is_empty() {
        let which = dataset.map_or(String::new(), |dataset| format!(" of dataset `{dataset}`"));
        println!(
            "No quality reports{which} under {}: `lakestar run <dir>{}` writes one per run.",
            home.display(),
            home_flag(home)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let run_width = reports.iter().map(|report| report.run.len()).max().unwrap_or(3);
    println!(
        "{:<20} {:<12} {:<run_width$} {:<23} {:>8} {:>8} {:>7} {:>6} {:>6} {:>5}",
        "landed", "dataset", "run", "status", "rows", "valid", "reject%", "failed", "warned", "drift"
    );
    for report in &reports {
        let failed: Vec<&str> =
            report.rules.iter().filter(|rule| rule.failed()).map(|rule| rule.rule.as_str()).collect();
        let quarantining: Vec<String> = report
            .rules
            .iter()
            .filter(|rule| rule.outcome == QUARANTINED)
            .map(|rule| format!("{} ({} rows)", rule.rule, rule.rows_failed))
            .collect();
        let warned: Vec<&str> =
            report.rules.iter().filter(|rule| rule.warned()).map(|rule| rule.rule.as_str()).collect();
        let landed =
            report.landed_at.map_or_else(|| "-".to_string(), |time| time.format("%Y-%m-%d %H:%M:%S").to_string());
        println!(
            "{landed:<20} {:<12} {:<run_width$} {:<23} {:>8} {:>8} {:>7.1} {:>6} {:>6} {:>5}",
            report.dataset,
            report.run,
            if report.status.is_empty() { "-" } else { &report.status },
            report.received,
            report.valid,
            report.reject_ratio * 100.0,
            failed.len(),
            warned.len(),
            drift_count(report),
        );
        for rule in &failed {
            println!("    failed: {rule}");
        }
        for rule in &quarantining {
            println!("    quarantined rows: {rule}");
        }
        for rule in &warned {
            println!("    warned: {rule}");
        }
        if !report.drift.added.is_empty() {
            println!("    drift: columns the contract does not know: {}", report.drift.added.join(", "));
        }
        if !report.drift.missing.is_empty() {
            println!("    drift: contract columns the file lacks: {}", report.drift.missing.join(", "));
        }
        if !report.schema_contract.evolved.is_empty() {
            println!("    drift: columns evolved into the warehouse: {}", report.schema_contract.evolved.join(", "));
        }
        for (column, count) in &report.schema_contract.unreadable_values {
            println!("    drift: {count} value(s) of {column} its type could not read, kept as null");
        }
        for refused in &report.schema_contract.refused {
            println!("    drift: not evolved: {refused}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
