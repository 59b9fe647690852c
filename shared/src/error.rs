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

    /// The file cannot be read at all (not just some rows): truncated gzip, corrupt Parquet.
    #[error("{key}: {message}")]
    UnreadableFile {
        /// The object key of the file.
        key: String,
        /// What went wrong, and where.
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

    /// The warehouse cannot be reached or refused a statement; worth retrying once it is back.
    #[error("warehouse unavailable: {0}")]
    WarehouseUnavailable(String),

    /// The warehouse rejected a load statement for a reason a retry will not fix (a constraint,
    /// a value its column type refuses); the message names the table and the step.
    #[error("warehouse load: {0}")]
    WarehouseLoad(String),

    /// A warehouse table conflicts with the contract in a way Lakestar will not change itself.
    #[error("warehouse schema: {0}")]
    WarehouseSchema(String),

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
            Error::UnreadableFile { .. } => "UnreadableFile",
            Error::S3 { .. } => "S3Unavailable",
            Error::PiiLeak { .. } => "PiiLeak",
            Error::WarehouseUnavailable(_) => "WarehouseUnavailable",
            Error::WarehouseSchema(_) => "WarehouseSchemaConflict",
            Error::WarehouseLoad(_) => "WarehouseLoadFailed",
            Error::Arrow { .. } => "DataWriteFailed",
            Error::Io { .. } => "IoFailed",
            Error::InvalidInput(_) => "InvalidInput",
            Error::Configuration(_) => "InvalidConfiguration",
            Error::StepFunctions { transient: true, .. } => "StepFunctionsUnavailable",
            Error::StepFunctions { transient: false, .. } => "StepFunctionsRefused",
            Error::Internal(_) => "InternalError",
        }
    }

    /// A failure of local scratch work (temporary files, a helper thread): the path is the
    /// temporary folder, where such work happens.
    pub(crate) fn temp_io(source: std::io::Error) -> Self {
        Error::Io { path: std::env::temp_dir(), source }
    }

    /// Whether retrying the same call may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::S3 { .. } | Error::Io { .. } | Error::WarehouseUnavailable(_))
    }

    /// Classifies a database error: connection trouble, serialization failures, deadlocks and
    /// an overloaded or restarting server are worth a retry; anything else is the statement's.
    pub(crate) fn database(context: impl std::fmt::Display, error: sqlx::Error) -> Self {
        let transient = match &error {
            sqlx::Error::Database(database) => database.code().is_some_and(|code| {
                ["08", "40", "53", "57"].iter().any(|class| code.starts_with(class)) || code == "5" || code == "6"
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
            Error::WarehouseUnavailable(format!("{context}: {error}"))
        } else {
            Error::WarehouseLoad(format!("{context}: {error}"))
        }
    }

    /// Wraps an Arrow or Parquet error with what was being done.
    pub(crate) fn arrow(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Arrow { context: context.into(), source: Box::new(source) }
    }
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(error: Error) -> Self {
        lambda_runtime::Diagnostic { error_type: error.error_type().to_string(), error_message: error.to_string() }
    }
}
