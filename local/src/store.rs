//! The offline stack's execution store: one JSON record per execution under
//! `<home>/executions/`, so a later process can list, inspect and re-drive them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::asl::Event;

/// One execution, as persisted under `<home>/executions/<name>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// The execution name: the run id.
    pub name: String,
    /// `RUNNING`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    /// The execution's input.
    pub input: Value,
    /// The output, once it succeeded.
    #[serde(default)]
    pub output: Option<Value>,
    /// The error name, once it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// The cause, once it failed.
    #[serde(default)]
    pub cause: Option<String>,
    /// The top-level state that failed: where a re-drive resumes.
    #[serde(default)]
    pub failed_state: Option<String>,
    /// That state's input.
    #[serde(default)]
    pub failed_input: Option<Value>,
    /// How many times it was re-driven.
    #[serde(default)]
    pub redrive_count: u32,
    /// When it started.
    pub start_date: DateTime<Utc>,
    /// When it stopped.
    #[serde(default)]
    pub stop_date: Option<DateTime<Utc>>,
    /// The event history.
    pub history: Vec<Event>,
}

impl ExecutionRecord {
    /// The dataset of the run.
    pub fn dataset(&self) -> &str {
        self.input["run"]["dataset"].as_str().unwrap_or("-")
    }

    /// The landed key of the run.
    pub fn key(&self) -> &str {
        self.input["run"]["key"].as_str().unwrap_or("-")
    }

    /// The state as it stands: the output, or the failed state's input.
    fn state(&self) -> Option<&Value> {
        self.output.as_ref().or(self.failed_input.as_ref())
    }

    /// Rows received, valid and quarantined, when validate ran.
    pub fn rows(&self) -> Option<(u64, u64, u64)> {
        let validate = self.state()?.get("validate")?;
        let number = |key: &str| validate.get(key).and_then(Value::as_u64).unwrap_or(0);
        let received = self.state()?.get("ingest").and_then(|ingest| ingest.get("rows")).and_then(Value::as_u64);
        Some((received.unwrap_or(number("received")), number("valid"), number("rejected")))
    }

    /// Inserted / updated per table, when load ran.
    pub fn tables(&self) -> BTreeMap<String, (u64, u64)> {
        let mut tables = BTreeMap::new();
        if let Some(Value::Object(load)) =
            self.state().and_then(|state| state.get("load")).and_then(|load| load.get("tables"))
        {
            for (table, counts) in load {
                let number = |key: &str| counts.get(key).and_then(Value::as_u64).unwrap_or(0);
                if number("inserted") + number("updated") > 0 {
                    tables.insert(table.clone(), (number("inserted"), number("updated")));
                }
            }
        }
        tables
    }
}

fn execution_path(home: &Path, name: &str) -> PathBuf {
    home.join("executions").join(format!("{name}.json"))
}

/// One persisted execution.
pub fn load_execution(home: &Path, name: &str) -> anyhow::Result<ExecutionRecord> {
    let path = execution_path(home, name);
    let text = std::fs::read(&path)
        .with_context(|| format!("no execution {name} under {}", home.join("executions").display()))?;
    serde_json::from_slice(&text).with_context(|| format!("reading {}", path.display()))
}

/// Every persisted execution, oldest first.
pub fn list_executions(home: &Path) -> anyhow::Result<Vec<ExecutionRecord>> {
    let folder = home.join("executions");
    let mut records = Vec::new();
    let Ok(entries) = std::fs::read_dir(&folder) else { return Ok(records) };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|extension| extension == "json") {
            let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            records.push(
                serde_json::from_slice::<ExecutionRecord>(&text)
                    .with_context(|| format!("reading {}", path.display()))?,
            );
        }
    }
    records.sort_by(|a, b| a.start_date.cmp(&b.start_date).then(a.name.cmp(&b.name)));
    Ok(records)
}

/// Writes a record atomically (a temporary file renamed over the old one).
pub fn save(home: &Path, record: &ExecutionRecord) -> anyhow::Result<()> {
    let path = execution_path(home, &record.name);
    let text = serde_json::to_vec_pretty(record)?;
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
