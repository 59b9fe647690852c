//! Files given to the offline stack, as the landing objects they become: their keys under
//! `landing/` and the time of their S3 event.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};

/// One landing file and the key it lands under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandingFile {
    /// The file.
    pub path: PathBuf,
    /// `landing/<relative path>`.
    pub key: String,
}

/// The time of a local drop's event: the delivery date when the key's folder names one
/// (`landing/2024-01-02/sales.csv` → 2024-01-02T00:00:00Z), else the file's modification time
/// to the second. Either way the same file dropped again is the same object at the same
/// time, hence the same run id, and an example replays identically on any machine.
pub fn event_time(key: &str, path: &Path) -> DateTime<Utc> {
    let folder_date = key
        .strip_prefix(lakestar::trigger::LANDING)
        .and_then(|rest| rest.split('/').next())
        .and_then(|folder| chrono::NaiveDate::parse_from_str(folder, "%Y-%m-%d").ok())
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc());
    folder_date.unwrap_or_else(|| {
        let modified = std::fs::metadata(path).and_then(|metadata| metadata.modified()).ok();
        let time: DateTime<Utc> = modified.map(DateTime::<Utc>::from).unwrap_or_else(Utc::now);
        DateTime::from_timestamp(time.timestamp(), 0).unwrap_or(time)
    })
}

/// Every file under each input's `landing/` folder (or the file itself), keyed
/// `landing/<relative path>`, in key order as a delivery would land. A folder without
/// `landing/` is a landing folder itself, unless it holds a `pipeline.toml`: an example
/// directory whose files all come from its sources (its scripts and seeds are not drops).
pub fn collect_drops(inputs: &[PathBuf]) -> anyhow::Result<Vec<LandingFile>> {
    let mut drops = Vec::new();
    for input in inputs {
        if input.is_file() {
            drops.push(LandingFile { path: input.clone(), key: file_key(input)? });
            continue;
        }
        let landing = input.join("landing");
        if !landing.is_dir() && input.join("pipeline.toml").is_file() {
            continue;
        }
        let root = if landing.is_dir() { landing } else { input.clone() };
        walk(&root, &root, &mut drops)?;
    }
    drops.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(drops)
}

fn walk(root: &Path, dir: &Path, drops: &mut Vec<LandingFile>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(root, &path, drops)?;
        } else if !path.file_name().is_some_and(|name| {
            let name = name.to_string_lossy();
            name.starts_with('.') || name == "pipeline.toml"
        }) {
            let relative = path.strip_prefix(root).context("a path under the landing folder")?;
            let key = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            drops.push(LandingFile { path, key: format!("landing/{key}") });
        }
    }
    Ok(())
}

/// The landing key of a file given by path: its path relative to the last `landing` folder
/// above it (`hr/landing/2024-06-02/fixes.csv` → `landing/2024-06-02/fixes.csv`), else
/// `landing/<file name>`.
pub fn file_key(path: &Path) -> anyhow::Result<String> {
    let parts: Vec<String> = path.components().map(|part| part.as_os_str().to_string_lossy().into_owned()).collect();
    match parts.iter().rposition(|part| part == "landing") {
        Some(at) if at + 1 < parts.len() => Ok(format!("landing/{}", parts[at + 1..].join("/"))),
        _ => {
            let name = path.file_name().context("a file name")?.to_string_lossy();
            Ok(format!("landing/{name}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_under_a_landing_folder_keeps_its_folders() {
        let key = |path: &str| file_key(Path::new(path)).expect("a key");
        assert_eq!(key("hr/landing/2024-06-02/employees_fixes.csv"), "landing/2024-06-02/employees_fixes.csv");
        assert_eq!(key("/data/landing/a/landing/b.csv"), "landing/b.csv");
        assert_eq!(key("exports/sales.csv"), "landing/sales.csv");
        assert_eq!(key("landing.csv"), "landing/landing.csv");
    }
}
