//! The stack's home: one process at a time (an exclusive lock on `<home>/.lock`, waited for
//! with a message that names the holder), and what the home remembers between commands
//! (`<home>/home.json`: its warehouse and its contract), so that every command and every hint
//! a command prints acts on the same warehouse as the run did.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The exclusive hold of a home; released when dropped (or when the process ends, however).
#[derive(Debug)]
pub struct HomeLock {
    _file: File,
}

impl HomeLock {
    /// Takes the home's lock, waiting while another process holds it (with a message on
    /// stderr naming that process). Several `lakestar` processes on one home therefore run one
    /// after the other: none sees the embedded S3's temporary files or the execution store
    /// half-written by another.
    pub fn acquire(home: &Path) -> anyhow::Result<HomeLock> {
        std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
        let path = home.join(".lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                eprintln!(
                    "Another lakestar process{} is using the home {}; waiting for it (or stop it, or give another --home).",
                    if holder.is_empty() { String::new() } else { format!(" ({holder})") },
                    home.display()
                );
                file.lock().with_context(|| format!("waiting for the lock on {}", path.display()))?;
            }
            Err(TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("locking {}", path.display()));
            }
        }
        file.set_len(0).and_then(|()| file.rewind()).with_context(|| format!("writing {}", path.display()))?;
        let command: Vec<String> = std::env::args().take(2).collect();
        let _ = write!(file, "pid {}, `{}`", std::process::id(), command.join(" "));
        Ok(HomeLock { _file: file })
    }

    /// Takes the lock only when no other process holds it.
    pub fn try_acquire(home: &Path) -> anyhow::Result<Option<HomeLock>> {
        let path = home.join(".lock");
        if !path.exists() {
            return HomeLock::acquire(home).map(Some);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(HomeLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(error)) => Err(error).with_context(|| format!("locking {}", path.display())),
        }
    }
}

/// What a home remembers between commands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeSettings {
    /// The warehouse its runs loaded into (`postgres://…` or `sqlite://…`).
    #[serde(default)]
    pub warehouse: Option<String>,
    /// The contract file its last run used.
    #[serde(default)]
    pub contract: Option<PathBuf>,
}

impl HomeSettings {
    fn path(home: &Path) -> PathBuf {
        home.join("home.json")
    }

    /// The home's settings (none yet for a new home). A home made before settings were
    /// kept remembers its contract in `pipeline.toml.path`.
    pub fn read(home: &Path) -> anyhow::Result<HomeSettings> {
        let path = HomeSettings::path(home);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let contract = std::fs::read_to_string(home.join("pipeline.toml.path")).ok().map(PathBuf::from);
                Ok(HomeSettings { warehouse: None, contract })
            }
            Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the settings, readable by the owner only (a warehouse URL may hold a password).
    pub fn write(&self, home: &Path) -> anyhow::Result<()> {
        let path = HomeSettings::path(home);
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", temporary.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(&temporary, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// The warehouse to use: the one asked for, else the one remembered, else SQLite in the
    /// home. Asking for another warehouse than the home's runs loaded into is refused unless
    /// `switch` says so: a re-drive must load where its run did.
    pub fn warehouse_for(&self, home: &Path, asked: Option<&str>, switch: bool) -> anyhow::Result<String> {
        let default = || format!("sqlite://{}", home.join("warehouse.db").display());
        match (asked, &self.warehouse) {
            (Some(asked), Some(known)) if asked != known && !switch => bail!(
                "the home {} loads into {}, not {}: give --switch-warehouse to load this home's runs elsewhere from now on, or another --home",
                home.display(),
                redact_url(known),
                redact_url(asked)
            ),
            (Some(asked), _) => Ok(asked.to_string()),
            (None, Some(known)) => Ok(known.clone()),
            (None, None) => Ok(default()),
        }
    }
}

/// A warehouse URL without its password, as messages show it.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    match rest.split_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

/// The home the commands use when not given `--home`.
pub const DEFAULT_HOME: &str = ".lakestar";

/// The `--home` flag a command for `home` needs (none for the default home), as hints print it.
pub fn home_flag(home: &Path) -> String {
    if home == Path::new(DEFAULT_HOME) { String::new() } else { format!(" --home {}", home.display()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_keeps_its_warehouse_and_refuses_another_unless_told() {
        let home = tempfile::tempdir().expect("home");
        let settings = HomeSettings { warehouse: Some("postgres://u:secret@db/x".to_string()), contract: None };
        settings.write(home.path()).expect("written");
        let read = HomeSettings::read(home.path()).expect("read");
        assert_eq!(read.warehouse_for(home.path(), None, false).expect("remembered"), "postgres://u:secret@db/x");
        let refused = read.warehouse_for(home.path(), Some("sqlite://other.db"), false).expect_err("refused");
        assert!(
            refused.to_string().contains("--switch-warehouse") && !refused.to_string().contains("secret"),
            "{refused}"
        );
        assert_eq!(
            read.warehouse_for(home.path(), Some("sqlite://other.db"), true).expect("told"),
            "sqlite://other.db"
        );
    }

    #[test]
    fn a_second_holder_of_a_home_is_refused_while_the_first_holds_it() {
        let home = tempfile::tempdir().expect("home");
        let first = HomeLock::acquire(home.path()).expect("first");
        assert!(HomeLock::try_acquire(home.path()).expect("tried").is_none(), "held");
        drop(first);
        assert!(HomeLock::try_acquire(home.path()).expect("tried").is_some(), "released");
    }
}
