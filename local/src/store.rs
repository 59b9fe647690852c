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
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `ABORTED` (stopped by a signal; re-drivable) or
    /// `ABANDONED` (given up by `lakestar abandon`; left out of `redrive --all-failed`).
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
    /// The process running it, while it runs.
    #[serde(default)]
    pub owner_pid: Option<u32>,
    /// The top-level state being run and its input, saved as each is entered: where a run
    /// whose process stopped (a kill, a full disk, a power cut) resumes.
    #[serde(default)]
    pub resume_state: Option<String>,
    /// That state's input.
    #[serde(default)]
    pub resume_input: Option<Value>,
}

/// A running execution.
pub const RUNNING: &str = "RUNNING";
/// A finished execution.
pub const SUCCEEDED: &str = "SUCCEEDED";
/// An execution that failed in a state.
pub const FAILED: &str = "FAILED";
/// An execution a signal (Ctrl-C, SIGTERM) stopped.
pub const ABORTED: &str = "ABORTED";
/// An execution given up.
pub const ABANDONED: &str = "ABANDONED";

/// The error of an execution whose process stopped while it ran.
pub const INTERRUPTED: &str = "Interrupted";

impl ExecutionRecord {
    /// The message of its failure, once and plainly: a Lambda error's cause is the JSON of
    /// the error; other causes are text.
    pub fn failure_message(&self) -> String {
        let cause = self.cause.as_deref().unwrap_or("");
        serde_json::from_str::<serde_json::Value>(cause)
            .ok()
            .and_then(|value| value.get("errorMessage").and_then(serde_json::Value::as_str).map(str::to_string))
            .unwrap_or_else(|| cause.to_string())
    }

    /// Whether a re-drive resumes it: it failed, or a signal stopped it.
    pub fn is_redrivable(&self) -> bool {
        self.status == FAILED || self.status == ABORTED
    }

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

    /// The warnings of its validate and load sections (warn rules that did not pass).
    pub fn warnings(&self) -> Vec<String> {
        let state = self.output.as_ref().or(self.failed_input.as_ref()).or(self.resume_input.as_ref());
        ["validate", "load"]
            .iter()
            .filter_map(|section| state?.get(section)?.get("warnings")?.as_array().cloned())
            .flatten()
            .filter_map(|warning| warning.as_str().map(str::to_string))
            .collect()
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

/// Marks every execution still `RUNNING` under `home` as failed with `Interrupted`, to be
/// resumed by a re-drive from the state it was in. Only the holder of the home's lock calls
/// it: no other process runs an execution then, so a `RUNNING` record is one whose process
/// stopped before it finished. Returns the names.
pub fn recover_interrupted(home: &Path) -> anyhow::Result<Vec<String>> {
    let mut recovered = Vec::new();
    for mut record in list_executions(home)? {
        if record.status != RUNNING {
            continue;
        }
        let state = record.resume_state.clone().unwrap_or_else(|| "the first state".to_string());
        let pid = record.owner_pid.map_or_else(String::new, |pid| format!(" (pid {pid})"));
        record.status = FAILED.to_string();
        record.error = Some(INTERRUPTED.to_string());
        record.cause = Some(format!(
            "the process running it{pid} stopped in {state} before the execution finished (killed, out of disk or memory, the machine stopped); `lakestar redrive {}` resumes it from {state}",
            record.name
        ));
        // No state entered yet: a re-drive starts from the first one.
        record.failed_state = record.resume_state.clone();
        record.failed_input = record.resume_input.clone();
        record.owner_pid = None;
        save(home, &record)?;
        recovered.push(record.name);
    }
    Ok(recovered)
}
