//! Connecting to the warehouse: pools for PostgreSQL and SQLite, Lakestar's migrations, the
//! load's session settings, and the RDS secret as connection options.

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::Warehouse;
use crate::{Error, Result};

/// How long a connection may take: a warehouse that is down fails the attempt quickly, and the
/// state machine's backoff does the waiting (the pool's default, 30 s an attempt, made one
/// execution take minutes to fail).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A failure to reach the warehouse `target` (never with credentials).
fn unavailable(target: &str, step: &str, error: impl std::fmt::Display) -> Error {
    Error::WarehouseUnavailable {
        target: target.to_string(),
        step: step.to_string(),
        sqlstate: None,
        message: error.to_string(),
    }
}

/// A URL as errors show it: without the password it may hold.
fn redacted(url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(scheme, rest)| rest.split_once('@').map(|(credentials, host)| (scheme, credentials, host)))
    {
        Some((scheme, credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

/// Host, port and database of PostgreSQL options, as errors name the target.
fn postgres_target(options: &sqlx::postgres::PgConnectOptions) -> String {
    format!("postgres://{}:{}/{}", options.get_host(), options.get_port(), options.get_database().unwrap_or_default())
}

impl Warehouse {
    /// Connects to `postgres://…` or `sqlite://path` (the SQLite file is created if missing),
    /// then applies Lakestar's migrations.
    pub async fn connect(url: &str) -> Result<Warehouse> {
        let warehouse = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options: sqlx::postgres::PgConnectOptions = url.parse().map_err(|error| {
                Error::Configuration(format!("`{}` is not a PostgreSQL URL: {error}", redacted(url)))
            })?;
            let target = postgres_target(&options);
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect_with(tuned(options))
                .await
                .map_err(|error| Error::connecting(&target, error))?;
            Warehouse::Postgres(pool)
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .busy_timeout(std::time::Duration::from_secs(30));
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(|error| unavailable(&format!("sqlite://{path}"), "opening the SQLite database", error))?;
            Warehouse::Sqlite(pool)
        } else {
            return Err(Error::Configuration(format!(
                "`{}` is not a warehouse URL: use postgres://user@host/db or sqlite://path/to/warehouse.db",
                redacted(url)
            )));
        };
        warehouse.migrate().await?;
        Ok(warehouse)
    }

    /// Connects to PostgreSQL with explicit options (the Lambda builds them from the RDS
    /// secret, TLS required), then applies Lakestar's migrations.
    pub async fn connect_postgres(options: sqlx::postgres::PgConnectOptions) -> Result<Warehouse> {
        let target = postgres_target(&options);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(tuned(options))
            .await
            .map_err(|error| Error::connecting(&target, error))?;
        let warehouse = Warehouse::Postgres(pool);
        warehouse.migrate().await?;
        Ok(warehouse)
    }

    /// Applies Lakestar's own migrations (run registry, load audit, quality metrics).
    pub async fn migrate(&self) -> Result<()> {
        match self {
            // sqlx takes an advisory lock: processes that connect at once apply them once.
            Warehouse::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await,
            Warehouse::Sqlite(pool) => migrate_sqlite(pool).await,
        }
        .map_err(|error| unavailable("", "applying Lakestar's migrations", error))
    }
}

/// Applies the SQLite migrations. sqlx's SQLite migrator takes no lock, so of several processes
/// opening one new file at once all but one lose a race (`UNIQUE constraint failed:
/// _sqlx_migrations.version`, a column already added, a busy database); each migration is
/// one transaction, so the loser, asked again, finds it applied and goes on.
async fn migrate_sqlite(pool: &sqlx::SqlitePool) -> std::result::Result<(), sqlx::migrate::MigrateError> {
    use sqlx::migrate::MigrateError;
    let mut attempt = 0u32;
    loop {
        match sqlx::migrate!("./migrations/sqlite").run(pool).await {
            Err(MigrateError::Execute(_) | MigrateError::ExecuteMigration(..)) if attempt < 8 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20 << attempt.min(5))).await;
            }
            result => return result,
        }
    }
}

/// Session settings for loads: staging tables are temporary, and PostgreSQL keeps them in
/// `temp_buffers` (8 MB by default, settable only before a session first uses one).
fn tuned(options: sqlx::postgres::PgConnectOptions) -> sqlx::postgres::PgConnectOptions {
    options.options([("temp_buffers", "256MB")])
}

/// The RDS secret's JSON (`username` and `password`; `host`, `port`, `dbname` when the secret
/// carries them), completed by `LAKESTAR_DATABASE_HOST`, `_PORT` and `_NAME` as RDS-managed
/// master secrets hold only the credentials. TLS is required.
pub fn postgres_options(
    secret: &str,
    environment: &crate::config::Environment,
) -> Result<sqlx::postgres::PgConnectOptions> {
    #[derive(serde::Deserialize)]
    struct Secret {
        username: String,
        password: String,
        host: Option<String>,
        port: Option<serde_json::Value>,
        dbname: Option<String>,
    }
    let secret: Secret = serde_json::from_str(secret).map_err(|error| {
        Error::Configuration(format!(
            "the database secret is not the JSON RDS keeps (`username`, `password`, optionally `host`, `port`, `dbname`): {error}"
        ))
    })?;
    let host = secret.host.or_else(|| environment.database_host.clone()).ok_or_else(|| {
        Error::Configuration("the database secret has no `host`; set LAKESTAR_DATABASE_HOST".to_string())
    })?;
    let port = match secret.port {
        Some(serde_json::Value::Number(number)) => number.as_u64(),
        Some(serde_json::Value::String(text)) => text.parse().ok(),
        _ => environment.database_port.as_deref().and_then(|text| text.parse().ok()),
    }
    .unwrap_or(5432);
    let port =
        u16::try_from(port).map_err(|_| Error::Configuration(format!("database port {port} is out of range")))?;
    let database =
        secret.dbname.or_else(|| environment.database_name.clone()).unwrap_or_else(|| "postgres".to_string());
    Ok(sqlx::postgres::PgConnectOptions::new()
        .host(&host)
        .port(port)
        .username(&secret.username)
        .password(&secret.password)
        .database(&database)
        .ssl_mode(sqlx::postgres::PgSslMode::Require)
        .application_name("lakestar-load"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rds_secret_becomes_tls_connection_options() {
        let options = postgres_options(
            r#"{"username":"lakestar","password":"p@ss/word","host":"db.example","port":5433,"dbname":"dw"}"#,
            &crate::config::Environment::default(),
        )
        .expect("options");
        assert_eq!((options.get_host(), options.get_port(), options.get_database()), ("db.example", 5433, Some("dw")));
        assert_eq!(options.get_username(), "lakestar");
        assert!(matches!(options.get_ssl_mode(), sqlx::postgres::PgSslMode::Require));

        // A managed master secret holds only the credentials; the rest comes from the environment.
        let env = |name: &str| match name {
            "LAKESTAR_DATABASE_HOST" => Some("rds.internal".to_string()),
            "LAKESTAR_DATABASE_PORT" => Some("5432".to_string()),
            "LAKESTAR_DATABASE_NAME" => Some("lakestar".to_string()),
            _ => None,
        };
        let options =
            postgres_options(r#"{"username":"u","password":"p"}"#, &crate::config::Environment::from_lookup(env))
                .expect("options");
        assert_eq!((options.get_host(), options.get_database()), ("rds.internal", Some("lakestar")));

        let error = postgres_options(r#"{"username":"u","password":"p"}"#, &crate::config::Environment::default())
            .expect_err("no host");
        assert!(error.to_string().contains("LAKESTAR_DATABASE_HOST"), "{error}");
        let error = postgres_options("not json", &crate::config::Environment::default()).expect_err("not JSON");
        assert_eq!(error.error_type(), "InvalidConfiguration");
        assert!(!error.to_string().contains("not json"));
    }
}
