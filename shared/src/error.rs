//! The crate's error type and the stable error names the state machine sees.

use std::path::PathBuf;

/// A `Result` whose error defaults to Lakestar's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can make a Lakestar stage fail.
///
/// Each variant maps to a stable [`Error::error_type`], the name that Lambda reports and
/// that the state machine's `Retry` and the Step Functions console show.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The contract file is not valid TOML or breaks a contract rule.
    #[error(transparent)]
    Contract(#[from] crate::contract::ContractError),

    /// The landing key matches no dataset of the contract.
    #[error(
        "no dataset in the contract matches the key `{key}`: add its pattern to a dataset's `match` list in pipeline.toml, or drop the file under a matching key"
    )]
    UnknownDataset {
        /// The object key that matched nothing.
        key: String,
    },

    /// The landing key matches more than one dataset.
    #[error(
        "the key `{key}` matches several datasets ({}): make their `match` patterns exclusive",
        datasets.join(", ")
    )]
    AmbiguousDataset {
        /// The object key.
        key: String,
        /// The datasets whose patterns match it.
        datasets: Vec<String>,
    },

    /// The file's columns do not satisfy the contract (for example a required column is missing).
    #[error("{key}: {message}")]
    SchemaMismatch {
        /// The object key of the file.
        key: String,
        /// What is missing or wrong, and what the contract expects.
        message: String,
    },

    /// The file drifted from the contract where the dataset's `schema_contract` freezes it: a
    /// column the contract does not declare, or a value its column's type cannot read.
    #[error("{key}: {message}")]
    SchemaDrift {
        /// The object key of the file.
        key: String,
        /// The drifting columns (never values), the mode, and what to change.
        message: String,
    },

    /// The file cannot be read at all (not just some rows): truncated gzip, corrupt Parquet.
    #[error("{key}: {message}")]
    UnreadableFile {
        /// The object key of the file.
        key: String,
        /// What went wrong, and where.
        message: String,
    },

    /// An object of the lake is not what Lakestar wrote there (truncated, corrupt, or
    /// missing columns its stage writes): a retry reads the same bytes, so it is not retried;
    /// re-run the stage that writes it (re-drive from that state, or process the file again).
    #[error("{key}: {message}")]
    CorruptObject {
        /// The object's key.
        key: String,
        /// What is wrong with it, and what to do.
        message: String,
    },

    /// The function's local disk (Lambda's `/tmp`, offline the temporary folder) is full: a
    /// retry in the same place fills it again.
    #[error("the local disk is full at {place}: {message}")]
    DiskFull {
        /// The folder being written (or the embedded S3 store's).
        place: String,
        /// What was being written, and what to do.
        message: String,
    },

    /// A call to S3 failed.
    #[error("S3 {operation} of s3://{bucket}/{key} failed: {message}")]
    S3 {
        /// The S3 operation, e.g. `GetObject`.
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// The key or prefix.
        key: String,
        /// The service's message.
        message: String,
    },

    /// A curated column the contract does not declare as masked holds personal data.
    #[error(
        "PII leak: column `{column}` of `{table}` holds {count} value(s) that look like {kind}, but the contract does not mask it; add `pii = {{ method = ... }}` to the column in pipeline.toml (nothing of this run was left in curated/)"
    )]
    PiiLeak {
        /// The star table.
        table: String,
        /// The curated column.
        column: String,
        /// The kind of personal data (`email`, `card_number`, …).
        kind: &'static str,
        /// How many values of the batch looked like it.
        count: u64,
    },

    /// More of the run's rows were rejected than the contract's quality thresholds allow, or
    /// too few are valid: the cause names the ratio, the threshold and the top rules.
    /// Evaluated again by a re-drive, with the contract as it is then.
    #[error("quality gate failed: {cause}")]
    QualityGateFailed {
        /// The run.
        run: String,
        /// Why: the figures, the thresholds, the top failing rules, where the rejects are.
        cause: String,
    },

    /// The warehouse cannot be reached, or answered with a condition that passes (a
    /// connection lost, a deadlock, a server starting or overloaded); worth retrying once it is
    /// back.
    #[error("warehouse unavailable{}: {step}: {message}", target_suffix(target))]
    WarehouseUnavailable {
        /// Which warehouse (host, port and database, or the SQLite file; never credentials);
        /// empty when the error arose inside an open transaction.
        target: String,
        /// What the load was doing.
        step: String,
        /// The SQLSTATE the server answered, when it answered.
        sqlstate: Option<String>,
        /// The server's or the driver's message.
        message: String,
    },

    /// The warehouse rejected a load statement for a reason a retry will not fix (a constraint,
    /// a value its column type refuses).
    #[error("warehouse load failed{}: {step}: {message}", table.as_deref().map(|table| format!(" on `{table}`")).unwrap_or_default())]
    WarehouseLoad {
        /// What the load was doing.
        step: String,
        /// The table, when known.
        table: Option<String>,
        /// The SQLSTATE the server answered, when it answered.
        sqlstate: Option<String>,
        /// The server's or Lakestar's message.
        message: String,
    },

    /// A warehouse table conflicts with the contract in a way Lakestar will not change itself.
    #[error("warehouse schema: {} {message}", match column { Some(column) => format!("column `{column}` of `{table}`"), None => format!("table `{table}`") })]
    WarehouseSchema {
        /// The table.
        table: String,
        /// The column, when one is at fault.
        column: Option<String>,
        /// What conflicts, and what to do (a sentence following the table or column's name).
        message: String,
    },

    /// Writing or reading Parquet or Arrow data failed.
    #[error("{context}: {source}")]
    Arrow {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The state input given to a handler is not what the state machine sends.
    #[error("invalid state input: {0}")]
    InvalidInput(String),

    /// The function's environment is missing a setting.
    #[error("configuration: {0}")]
    Configuration(String),

    /// A Step Functions call of the trigger failed: `transient` when throttled, a service
    /// fault or the network (retried), else refused (access, a missing state machine).
    #[error("Step Functions {operation} for run {run} failed: {message}")]
    StepFunctions {
        /// The API call, e.g. `StartExecution`.
        operation: &'static str,
        /// The run (execution name).
        run: String,
        /// Whether a retry may succeed.
        transient: bool,
        /// The service's message.
        message: String,
    },

    /// A Glue Data Catalog call of the load failed: `transient` when throttled, a service
    /// fault or the network (retried), else refused (access, a missing database).
    #[error("Glue Data Catalog {operation} of table `{table}` in database `{database}` failed: {message}")]
    Catalog {
        /// The API call, e.g. `UpdateTable`.
        operation: &'static str,
        /// The catalog database.
        database: String,
        /// The table.
        table: String,
        /// Whether a retry may succeed.
        transient: bool,
        /// The service's message.
        message: String,
    },

    /// An extraction source failed: `transient` when it may pass (the database or API
    /// unreachable, a 429 or 5xx answer after every attempt, a lost connection), else refused
    /// (credentials, a missing table, an answer that is not what the contract says).
    #[error("source `{source_name}`: {message}")]
    Source {
        /// The source's name in the contract.
        source_name: String,
        /// Whether a later extraction may succeed without anyone changing anything.
        transient: bool,
        /// What failed, where (host, table, URL without its query), and what to do.
        message: String,
    },

    /// A bug or a task that stopped (a panicked thread, a result that cannot be serialised):
    /// nothing the input or the operator caused. The message says what broke.
    #[error("internal error: {0}; please report it with the run id")]
    Internal(String),
}

impl Error {
    /// The stable name of this error, as Lambda reports it (`errorType`) and as the
    /// state machine matches it in `Retry` and `ErrorEquals`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Contract(_) => "InvalidContract",
            Error::UnknownDataset { .. } => "UnknownDataset",
            Error::AmbiguousDataset { .. } => "AmbiguousDataset",
            Error::SchemaMismatch { .. } => "SchemaMismatch",
            Error::SchemaDrift { .. } => "SchemaDrift",
            Error::UnreadableFile { .. } => "UnreadableFile",
            Error::CorruptObject { .. } => "CorruptObject",
            Error::DiskFull { .. } => "DiskFull",
            Error::S3 { .. } => "S3Unavailable",
            Error::PiiLeak { .. } => "PiiLeak",
            Error::QualityGateFailed { .. } => "QualityGateFailed",
            Error::WarehouseUnavailable { .. } => "WarehouseUnavailable",
            Error::WarehouseSchema { .. } => "WarehouseSchemaConflict",
            Error::WarehouseLoad { .. } => "WarehouseLoadFailed",
            Error::Arrow { .. } => "DataWriteFailed",
            Error::Io { .. } => "IoFailed",
            Error::InvalidInput(_) => "InvalidInput",
            Error::Configuration(_) => "InvalidConfiguration",
            Error::StepFunctions { transient: true, .. } => "StepFunctionsUnavailable",
            Error::StepFunctions { transient: false, .. } => "StepFunctionsRefused",
            Error::Catalog { transient: true, .. } => "CatalogUnavailable",
            Error::Catalog { transient: false, .. } => "CatalogRefused",
            Error::Source { transient: true, .. } => "SourceUnavailable",
            Error::Source { transient: false, .. } => "SourceFailed",
            Error::Internal(_) => "InternalError",
        }
    }

    /// Every error type a Lakestar function reports ([`Error::error_type`]'s names).
    pub const TYPES: &'static [&'static str] = &[
        "InvalidContract",
        "UnknownDataset",
        "AmbiguousDataset",
        "SchemaMismatch",
        "SchemaDrift",
        "UnreadableFile",
        "CorruptObject",
        "DiskFull",
        "S3Unavailable",
        "PiiLeak",
        "QualityGateFailed",
        "WarehouseUnavailable",
        "WarehouseLoadFailed",
        "WarehouseSchemaConflict",
        "DataWriteFailed",
        "IoFailed",
        "InvalidInput",
        "InvalidConfiguration",
        "StepFunctionsUnavailable",
        "StepFunctionsRefused",
        "CatalogUnavailable",
        "CatalogRefused",
        "SourceUnavailable",
        "SourceFailed",
        "InternalError",
    ];

    /// The error types worth retrying without anyone changing anything: what passes (a
    /// service or the network briefly unavailable). The state machine's `Retry` lists name
    /// these (those a stage can raise) besides Lambda's own errors; everything else fails the
    /// Task at once, to be fixed and re-driven.
    pub const TRANSIENT: &'static [&'static str] = &[
        "S3Unavailable",
        "WarehouseUnavailable",
        "StepFunctionsUnavailable",
        "CatalogUnavailable",
        "SourceUnavailable",
    ];

    /// Whether retrying the same call may succeed without anyone changing anything: the one
    /// decision of what is retried ([`Error::TRANSIENT`]).
    pub fn is_transient(&self) -> bool {
        Self::TRANSIENT.contains(&self.error_type())
    }

    /// A failure of local scratch work (temporary files, a helper thread): the path is the
    /// temporary folder, where such work happens. A full disk is [`Error::DiskFull`].
    pub(crate) fn temp_io(source: std::io::Error) -> Self {
        Error::local_io(std::env::temp_dir(), source)
    }

    /// A local file's failure: [`Error::DiskFull`] when the disk is full, else [`Error::Io`].
    pub(crate) fn local_io(path: PathBuf, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::StorageFull || source.raw_os_error() == Some(28) {
            return Error::DiskFull {
                place: path.display().to_string(),
                message: format!(
                    "{source}: free space there and re-drive (in AWS raise the function's EphemeralStorage, up to 10 GB, or deliver the file in smaller parts)"
                ),
            };
        }
        Error::Io { path, source }
    }

    /// A part of the lake that Lakestar wrote and cannot read back (`what` says how): cut
    /// short or damaged since. Reading it again gives the same bytes; writing it again needs
    /// the run processed again.
    pub(crate) fn corrupt_part(key: &str, what: impl std::fmt::Display) -> Self {
        Error::CorruptObject {
            key: key.to_string(),
            message: format!(
                "{what}: it was cut short or damaged after it was written; process the file again as a new run (offline `lakestar reprocess <run>`; in AWS see docs/errors.md#corruptobject)"
            ),
        }
    }

    /// Classifies a database error: connection trouble, serialization failures, deadlocks and
    /// an overloaded or restarting server are worth a retry; anything else is the statement's.
    /// The SQLSTATE and the table travel with it.
    pub(crate) fn database(step: impl std::fmt::Display, error: sqlx::Error) -> Self {
        let (sqlstate, table, message) = match &error {
            sqlx::Error::Database(database) => (
                database.code().map(|code| code.to_string()),
                database.table().map(str::to_string),
                database.message().to_string(),
            ),
            other => (None, None, other.to_string()),
        };
        // SQLite's SQLITE_FULL (13): the disk under the warehouse file is full.
        if matches!(&error, sqlx::Error::Database(_)) && sqlstate.as_deref() == Some("13") {
            return Error::DiskFull {
                place: "the SQLite warehouse's folder".to_string(),
                message: format!("{step}: {message}: free space there, then re-drive"),
            };
        }
        let transient = match &error {
            // Connection trouble (08), serialization failures and deadlocks (40), resources (53),
            // a server stopping or starting (57), and authentication (28: the managed secret
            // rotates; the load re-reads it and tries again before the state machine does).
            sqlx::Error::Database(_) => sqlstate.as_deref().is_some_and(|code| {
                ["08", "28", "40", "53", "57"].iter().any(|class| code.starts_with(class)) || code == "5" || code == "6"
            }),
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            _ => false,
        };
        if transient {
            Error::WarehouseUnavailable { target: String::new(), step: step.to_string(), sqlstate, message }
        } else {
            Error::WarehouseLoad { step: step.to_string(), table, sqlstate, message }
        }
    }

    /// A failure to connect to the warehouse `target` (never with credentials), classified as
    /// [`Error::database`] classifies, with the target named.
    pub(crate) fn connecting(target: &str, error: sqlx::Error) -> Self {
        match Error::database("connecting", error) {
            Error::WarehouseUnavailable { step, sqlstate, message, .. } => {
                Error::WarehouseUnavailable { target: target.to_string(), step, sqlstate, message }
            }
            Error::WarehouseLoad { step, sqlstate, message, .. } => {
                Error::WarehouseUnavailable { target: target.to_string(), step, sqlstate, message }
            }
            other => other,
        }
    }

    /// Whether the warehouse refused the credentials (SQLSTATE class 28): the secret may have
    /// rotated since it was read.
    pub fn is_authentication_failure(&self) -> bool {
        matches!(
            self,
            Error::WarehouseUnavailable { sqlstate: Some(code), .. } | Error::WarehouseLoad { sqlstate: Some(code), .. }
                if code.starts_with("28")
        )
    }

    /// A load step's failure that is not the database's (a helper thread, a stream that does
    /// not decode): not retried.
    pub(crate) fn load_step(step: impl Into<String>, message: impl Into<String>) -> Self {
        Error::WarehouseLoad { step: step.into(), table: None, sqlstate: None, message: message.into() }
    }

    /// Wraps an Arrow or Parquet error with what was being done.
    pub(crate) fn arrow(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Arrow { context: context.into(), source: Box::new(source) }
    }
}

/// An error and its sources as one sentence (`dispatch failure: io error: connection
/// refused`): each message once, never the `Debug` dump that the SDK's own context display
/// appends.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&dyn std::error::Error> = Some(error);
    while let Some(error) = current {
        let text = error.to_string();
        if !text.is_empty() && !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}

/// ` to <target>` when the target is known.
fn target_suffix(target: &str) -> String {
    if target.is_empty() { String::new() } else { format!(" ({target})") }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic { error_type: error.error_type().to_string(), error_message: error.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One error of each variant: the `match` has no wildcard, so a new variant does not
    /// compile until it is listed here, and then in [`Error::TYPES`] (checked below).
    fn one_of_each() -> Vec<Error> {
        let text = || String::new();
        let all = vec![
            Error::Contract(crate::contract::ContractError { file: text(), problems: Vec::new() }),
            Error::UnknownDataset { key: text() },
            Error::AmbiguousDataset { key: text(), datasets: Vec::new() },
            Error::SchemaMismatch { key: text(), message: text() },
            Error::SchemaDrift { key: text(), message: text() },
            Error::UnreadableFile { key: text(), message: text() },
            Error::CorruptObject { key: text(), message: text() },
            Error::DiskFull { place: text(), message: text() },
            Error::S3 { operation: "GetObject", bucket: text(), key: text(), message: text() },
            Error::PiiLeak { table: text(), column: text(), kind: "email", count: 1 },
            Error::QualityGateFailed { run: text(), cause: text() },
            Error::WarehouseUnavailable { target: text(), step: text(), sqlstate: None, message: text() },
            Error::WarehouseLoad { step: text(), table: None, sqlstate: None, message: text() },
            Error::WarehouseSchema { table: text(), column: None, message: text() },
            Error::arrow("x", std::io::Error::other("x")),
            Error::temp_io(std::io::Error::other("x")),
            Error::InvalidInput(text()),
            Error::Configuration(text()),
            Error::StepFunctions { operation: "StartExecution", run: text(), transient: true, message: text() },
            Error::StepFunctions { operation: "StartExecution", run: text(), transient: false, message: text() },
            Error::Catalog {
                operation: "UpdateTable",
                database: text(),
                table: text(),
                transient: true,
                message: text(),
            },
            Error::Catalog {
                operation: "UpdateTable",
                database: text(),
                table: text(),
                transient: false,
                message: text(),
            },
            Error::Source { source_name: text(), transient: true, message: text() },
            Error::Source { source_name: text(), transient: false, message: text() },
            Error::Internal(text()),
        ];
        for error in &all {
            match error {
                Error::Contract(_)
                | Error::UnknownDataset { .. }
                | Error::AmbiguousDataset { .. }
                | Error::SchemaMismatch { .. }
                | Error::SchemaDrift { .. }
                | Error::UnreadableFile { .. }
                | Error::CorruptObject { .. }
                | Error::DiskFull { .. }
                | Error::S3 { .. }
                | Error::PiiLeak { .. }
                | Error::QualityGateFailed { .. }
                | Error::WarehouseUnavailable { .. }
                | Error::WarehouseLoad { .. }
                | Error::WarehouseSchema { .. }
                | Error::Arrow { .. }
                | Error::Io { .. }
                | Error::InvalidInput(_)
                | Error::Source { .. }
                | Error::Configuration(_)
                | Error::StepFunctions { .. }
                | Error::Catalog { .. }
                | Error::Internal(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_variant_has_a_listed_error_type_and_every_listed_type_a_variant() {
        let types: Vec<&str> = one_of_each().iter().map(Error::error_type).collect();
        assert_eq!(types, Error::TYPES, "Error::TYPES lists every variant's error type, in order");
        for transient in Error::TRANSIENT {
            assert!(Error::TYPES.contains(transient), "{transient}");
        }
    }
}
