//! Every environment variable Lakestar reads, in one place, read once when a process starts
//! (a Lambda's cold start, the `lakestar` command): [`Environment::get`]. Nothing else in
//! the code calls `std::env::var`; `docs/configuration.md` lists [`VARIABLES`] and a test
//! holds the two equal.

use std::sync::OnceLock;

/// One environment variable: its name and what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    /// The name, e.g. `LAKE_BUCKET`.
    pub name: &'static str,
    /// Which functions read it and what it means.
    pub doc: &'static str,
}

/// The lake bucket's name (every function).
pub const LAKE_BUCKET: &str = "LAKE_BUCKET";
/// Where the contract is: `s3://bucket/key` or a local path (every function).
pub const CONFIG: &str = "LAKESTAR_CONFIG";
/// `true` forces path-style S3 addressing (endpoints without virtual hosts).
pub const S3_PATH_STYLE: &str = "LAKESTAR_S3_PATH_STYLE";
/// The state machine's ARN (trigger).
pub const STATE_MACHINE_ARN: &str = "STATE_MACHINE_ARN";
/// The Secrets Manager secret holding the masking key (mask).
pub const MASKING_SECRET: &str = "LAKESTAR_MASKING_SECRET";
/// The masking key itself, outside AWS (mask, the offline stack).
pub const MASKING_KEY: &str = "LAKESTAR_MASKING_KEY";
/// The Secrets Manager secret of the RDS database (load).
pub const DATABASE_SECRET: &str = "LAKESTAR_DATABASE_SECRET";
/// A warehouse URL instead of the secret, outside AWS (load).
pub const WAREHOUSE_URL: &str = "LAKESTAR_WAREHOUSE_URL";
/// The database host when the secret has none (load).
pub const DATABASE_HOST: &str = "LAKESTAR_DATABASE_HOST";
/// The database port when the secret has none (load).
pub const DATABASE_PORT: &str = "LAKESTAR_DATABASE_PORT";
/// The database name when the secret has none (load).
pub const DATABASE_NAME: &str = "LAKESTAR_DATABASE_NAME";
/// The Glue Data Catalog database the load keeps the curated tables in (load; unset: none).
pub const GLUE_DATABASE: &str = "LAKESTAR_GLUE_DATABASE";
/// The function's memory in MB, set by Lambda (mask sizes what it holds by it).
pub const FUNCTION_MEMORY: &str = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE";
/// The function's name, set by Lambda: metrics are printed only inside Lambda.
pub const FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
/// A stage whose handler fails on a run's first attempt (the offline stack; a testing aid).
pub const FAULT: &str = "LAKESTAR_FAULT";
/// The functions' log level, set by Lambda from the function's logging configuration.
pub const LAMBDA_LOG_LEVEL: &str = "AWS_LAMBDA_LOG_LEVEL";
/// The functions' log format (`JSON` or `Text`), set by Lambda.
pub const LAMBDA_LOG_FORMAT: &str = "AWS_LAMBDA_LOG_FORMAT";
/// The functions' log filter when Lambda sets no level (e.g. `info`, `lakestar=debug`).
pub const RUST_LOG: &str = "RUST_LOG";
/// The log filter of the `lakestar` command (e.g. `info`, `lakestar=debug`).
pub const LOG: &str = "LAKESTAR_LOG";
/// A stage whose Task waits a minute before it runs, or after its handler returned
/// (`<state>:after`): the offline stack's testing aid for stopping a run inside an execution.
pub const TEST_PAUSE_IN: &str = "LAKESTAR_TEST_PAUSE_IN";

/// Every variable, documented once.
pub const VARIABLES: &[Variable] = &[
    Variable { name: LAKE_BUCKET, doc: "The lake bucket's name. Every function; set by the template." },
    Variable {
        name: CONFIG,
        doc: "Where the contract is: `s3://bucket/key` or a local path. Default `s3://$LAKE_BUCKET/config/pipeline.toml`.",
    },
    Variable {
        name: S3_PATH_STYLE,
        doc: "`true` forces path-style S3 addressing, for S3 endpoints without virtual hosts (the embedded one).",
    },
    Variable { name: STATE_MACHINE_ARN, doc: "The trigger: the ARN of the state machine it starts executions of." },
    Variable {
        name: MASKING_SECRET,
        doc: "Mask: the Secrets Manager secret holding the masking key (its string, or JSON `{\"key\", \"version\"}`).",
    },
    Variable {
        name: MASKING_KEY,
        doc: "Mask outside AWS and the offline stack: the masking key itself (at least 16 bytes). Offline default: `<home>/masking.key`.",
    },
    Variable {
        name: DATABASE_SECRET,
        doc: "Load: the Secrets Manager secret of the RDS database (`username`, `password`, optionally `host`, `port`, `dbname`).",
    },
    Variable {
        name: WAREHOUSE_URL,
        doc: "Load outside AWS: a `postgres://…` or `sqlite://…` warehouse URL instead of the secret.",
    },
    Variable { name: DATABASE_HOST, doc: "Load: the database host when the secret has none (RDS-managed secrets)." },
    Variable { name: DATABASE_PORT, doc: "Load: the database port when the secret has none. Default 5432." },
    Variable { name: DATABASE_NAME, doc: "Load: the database name when the secret has none. Default `postgres`." },
    Variable {
        name: GLUE_DATABASE,
        doc: "Load: the Glue Data Catalog database it keeps one table per curated table in, for Athena. Unset: no catalog.",
    },
    Variable {
        name: FUNCTION_MEMORY,
        doc: "Set by Lambda: the function's memory in MB. Mask holds a fifth of it in fact rows before spilling (1024 when unset).",
    },
    Variable {
        name: FUNCTION_NAME,
        doc: "Set by Lambda. When present, metrics are printed as CloudWatch embedded-metric-format lines.",
    },
    Variable {
        name: FAULT,
        doc: "The offline stack: `ingest`, `validate`, `mask` or `load` fails with `InjectedFault` on each run's first attempt (a testing aid).",
    },
    Variable {
        name: LOG,
        doc: "The `lakestar` command's log filter, e.g. `info` or `lakestar=debug`. Default `warn`.",
    },
    Variable {
        name: LAMBDA_LOG_LEVEL,
        doc: "Set by Lambda: the functions' log level (`DEBUG` shows each load step's time).",
    },
    Variable {
        name: LAMBDA_LOG_FORMAT,
        doc: "Set by Lambda: `JSON` (the template's) or `Text` (then without colour codes).",
    },
    Variable { name: RUST_LOG, doc: "The functions' log filter when Lambda sets no level. The template sets `info`." },
    Variable {
        name: TEST_PAUSE_IN,
        doc: "The offline stack: the Task state of that name (e.g. `Mask`) waits a minute before it runs, or with `:after` (`Mask:after`) once its handler returned and before the state machine records it, so that a test can stop a run there (a testing aid; it says so on stderr).",
    },
];

/// The environment as Lakestar reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// [`LAKE_BUCKET`].
    pub lake_bucket: Option<String>,
    /// [`CONFIG`].
    pub contract_location: Option<String>,
    /// [`S3_PATH_STYLE`].
    pub s3_path_style: bool,
    /// [`STATE_MACHINE_ARN`].
    pub state_machine_arn: Option<String>,
    /// [`MASKING_SECRET`].
    pub masking_secret: Option<String>,
    /// [`MASKING_KEY`].
    pub masking_key: Option<String>,
    /// [`DATABASE_SECRET`].
    pub database_secret: Option<String>,
    /// [`WAREHOUSE_URL`].
    pub warehouse_url: Option<String>,
    /// [`DATABASE_HOST`].
    pub database_host: Option<String>,
    /// [`DATABASE_PORT`].
    pub database_port: Option<String>,
    /// [`DATABASE_NAME`].
    pub database_name: Option<String>,
    /// [`GLUE_DATABASE`].
    pub glue_database: Option<String>,
    /// [`FUNCTION_MEMORY`], in MB.
    pub function_memory_mb: Option<usize>,
    /// Whether [`FUNCTION_NAME`] is set: the process is a Lambda function.
    pub in_lambda: bool,
    /// [`FAULT`].
    pub fault: Option<String>,
    /// [`LOG`].
    pub log: Option<String>,
    /// [`TEST_PAUSE_IN`].
    pub test_pause_in: Option<String>,
    /// [`LAMBDA_LOG_LEVEL`], else [`RUST_LOG`].
    pub function_log_level: Option<String>,
    /// Whether [`LAMBDA_LOG_FORMAT`] is `JSON`.
    pub function_log_json: bool,
}

/// A variable a contract names (a source's `url_env` or `token_env`), read when the source is
/// extracted: the one place besides [`Environment::get`] that reads the environment.
pub fn named_variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

impl Environment {
    /// The process's environment, read on the first call and kept.
    pub fn get() -> &'static Environment {
        static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
        ENVIRONMENT.get_or_init(|| Environment::from_lookup(|name| std::env::var(name).ok()))
    }

    /// The environment `lookup` describes (tests give a map; [`Environment::get`] the process's).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Environment {
        let text = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        Environment {
            lake_bucket: text(LAKE_BUCKET),
            contract_location: text(CONFIG),
            s3_path_style: text(S3_PATH_STYLE).is_some_and(|value| value == "true"),
            state_machine_arn: text(STATE_MACHINE_ARN),
            masking_secret: text(MASKING_SECRET),
            masking_key: lookup(MASKING_KEY),
            database_secret: text(DATABASE_SECRET),
            warehouse_url: text(WAREHOUSE_URL),
            database_host: text(DATABASE_HOST),
            database_port: text(DATABASE_PORT),
            database_name: text(DATABASE_NAME),
            glue_database: text(GLUE_DATABASE),
            function_memory_mb: text(FUNCTION_MEMORY).and_then(|value| value.trim().parse().ok()),
            in_lambda: lookup(FUNCTION_NAME).is_some(),
            fault: text(FAULT),
            log: text(LOG),
            test_pause_in: text(TEST_PAUSE_IN),
            function_log_level: text(LAMBDA_LOG_LEVEL).or_else(|| text(RUST_LOG)),
            function_log_json: text(LAMBDA_LOG_FORMAT).is_some_and(|format| format.eq_ignore_ascii_case("json")),
        }
    }

    /// The contract's location: [`CONFIG`], else the contract key in the lake bucket.
    pub fn contract_location(&self, bucket: &str) -> String {
        self.contract_location.clone().unwrap_or_else(|| format!("s3://{bucket}/{}", crate::lake::CONFIG_KEY))
    }

    /// How many bytes of masked fact rows mask holds in memory: a fifth of the function's
    /// memory ([`FUNCTION_MEMORY`]; 1 024 MB, the template's, when not in Lambda). The 1.2
    /// million masked rows of a 100 MB sales file fit in a fifth of 1 024 MB; larger files
    /// spill, partition by partition, so memory stays bounded whatever their size.
    pub fn mask_held_bytes(&self) -> usize {
        const HELD_SHARE: usize = 5;
        self.function_memory_mb.unwrap_or(1024).saturating_mul(1024 * 1024) / HELD_SHARE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_read_and_documented_once() {
        let names: Vec<&str> = VARIABLES.iter().map(|variable| variable.name).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "a variable is documented twice");
        let environment = Environment::from_lookup(|name| names.contains(&name).then(|| "1".to_string()));
        assert_eq!(environment.function_memory_mb, Some(1));
        assert!(environment.in_lambda && !environment.s3_path_style);
        assert_eq!(Environment::from_lookup(|_| None).mask_held_bytes(), 1024 * 1024 * 1024 / 5);
    }
}
