//! What every function reads from its environment at cold start: the lake bucket, the S3
//! client, and the contract.

use aws_sdk_s3::Client;

use crate::contract::Contract;
use crate::lake::Lake;
use crate::{Error, Result};

/// The environment variable naming the lake bucket.
pub const LAKE_BUCKET: &str = "LAKE_BUCKET";
/// The environment variable locating the contract: `s3://bucket/key` or a local path.
/// Default `s3://$LAKE_BUCKET/config/pipeline.toml`.
pub const CONFIG: &str = "LAKESTAR_CONFIG";
/// The contract's key in the lake bucket.
pub const CONFIG_KEY: &str = "config/pipeline.toml";

/// An S3 client from the standard AWS configuration chain. `AWS_ENDPOINT_URL_S3` points
/// it elsewhere (for example a local endpoint); `LAKESTAR_S3_PATH_STYLE=true` forces
/// path-style addressing for endpoints without virtual hosts.
pub async fn s3_client() -> Client {
    let shared = aws_config::load_from_env().await;
    let path_style = std::env::var("LAKESTAR_S3_PATH_STYLE").is_ok_and(|value| value == "true");
    Client::from_conf(aws_sdk_s3::config::Builder::from(&shared).force_path_style(path_style).build())
}

/// The lake named by `LAKE_BUCKET`.
pub fn lake(client: Client) -> Result<Lake> {
    let bucket = std::env::var(LAKE_BUCKET)
        .map_err(|_| Error::Configuration(format!("set {LAKE_BUCKET} to the lake bucket's name")))?;
    Ok(Lake::new(client, bucket))
}

/// Loads the contract from `location` (`s3://bucket/key` or a local path).
pub async fn load_contract(client: &Client, location: &str) -> Result<Contract> {
    if let Some(rest) = location.strip_prefix("s3://") {
        let (bucket, key) =
            rest.split_once('/').ok_or_else(|| Error::Configuration(format!("{location} is not s3://bucket/key")))?;
        let bytes = Lake::new(client.clone(), bucket).get_bytes(key).await?;
        let text =
            String::from_utf8(bytes).map_err(|_| Error::Configuration(format!("{location} is not UTF-8 text")))?;
        Ok(Contract::parse(location, &text)?)
    } else {
        Contract::load(std::path::Path::new(location))
    }
}

/// Loads the contract the environment names.
pub async fn contract(lake: &Lake) -> Result<Contract> {
    let location = std::env::var(CONFIG).unwrap_or_else(|_| format!("s3://{}/{CONFIG_KEY}", lake.bucket()));
    load_contract(lake.client(), &location).await
}
