//! The load Lambda: the run's curated star table into the warehouse, with its quality report.
//! Thin: it parses the state document and calls [`lakestar::load::load`].

use lakestar::contract::Contract;
use lakestar::lake::Lake;
use lakestar::load::LoadOutput;
use lakestar::state::StageInput;
use lakestar::warehouse::Warehouse;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// The environment variable naming the RDS secret in Secrets Manager.
pub const SECRET_ENV: &str = "LAKESTAR_DATABASE_SECRET";
/// Outside AWS: a warehouse URL (`postgres://…` or `sqlite://…`) instead of the secret.
pub const URL_ENV: &str = "LAKESTAR_WAREHOUSE_URL";

/// What the function builds once per cold start: the lake client, the contract and the pool.
#[derive(Debug, Clone)]
pub struct LoadFunction {
    lake: Lake,
    contract: Contract,
    warehouse: Warehouse,
}

impl LoadFunction {
    /// Builds the function from its environment: `LAKE_BUCKET`, optional `LAKESTAR_CONFIG`,
    /// and the warehouse from the RDS secret named by `LAKESTAR_DATABASE_SECRET` (TLS
    /// required) or, outside AWS, `LAKESTAR_WAREHOUSE_URL`.
    pub async fn from_env() -> lakestar::Result<LoadFunction> {
        let lake = lakestar::env::lake(lakestar::env::s3_client().await)?;
        let contract = lakestar::env::contract(&lake).await?;
        let warehouse = match (std::env::var(SECRET_ENV), std::env::var(URL_ENV)) {
            (Ok(secret_id), _) => {
                let config = aws_config::load_from_env().await;
                let client = aws_sdk_secretsmanager::Client::new(&config);
                let secret = client.get_secret_value().secret_id(&secret_id).send().await.map_err(|error| {
                    lakestar::Error::WarehouseUnavailable(format!(
                        "reading the database secret {secret_id}: {}",
                        aws_sdk_secretsmanager::error::DisplayErrorContext(&error)
                    ))
                })?;
                let text = secret.secret_string().ok_or_else(|| {
                    lakestar::Error::Configuration(format!("the database secret {secret_id} has no SecretString"))
                })?;
                let options = lakestar::warehouse::postgres_options(text, |name| std::env::var(name).ok())?;
                Warehouse::connect_postgres(options).await?
            }
            (Err(_), Ok(url)) => Warehouse::connect(&url).await?,
            (Err(_), Err(_)) => {
                return Err(lakestar::Error::Configuration(format!(
                    "set {SECRET_ENV} to the RDS secret's id (or {URL_ENV} outside AWS)"
                )));
            }
        };
        Ok(LoadFunction { lake, contract, warehouse })
    }

    /// A function over an explicit lake, contract and warehouse (the offline stack and tests).
    pub fn new(lake: Lake, contract: Contract, warehouse: Warehouse) -> LoadFunction {
        LoadFunction { lake, contract, warehouse }
    }

    /// Handles one invocation: the state document (with its `mask` section) in, the `load`
    /// section out.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<LoadOutput, Diagnostic> {
        let input = StageInput::from_value(event.payload)?;
        let output = lakestar::load::load(&self.lake, &self.contract, &self.warehouse, &input).await?;
        Ok(output)
    }
}
