//! Where a function's contract, masking key and warehouse come from: given outright (the
//! offline stack, tests) or fetched on first use inside an invocation (Lambda), so that no
//! network call happens at cold start and every failure is a named error of the invocation.

use std::path::PathBuf;

use tokio::sync::Mutex;

use crate::config::Environment;
use crate::contract::Contract;
use crate::lake::Lake;
use crate::mask::MaskingKey;
use crate::warehouse::Warehouse;
use crate::{Error, Result};

/// Where the contract comes from.
#[derive(Debug)]
pub enum ContractSource {
    /// A contract given outright.
    Fixed(Contract),
    /// An object in S3, read on first use and again whenever its ETag changed.
    S3 {
        /// The bucket holding it.
        lake: Lake,
        /// Its key.
        key: String,
        /// The ETag and the contract last read.
        cached: Mutex<Option<(String, Contract)>>,
    },
    /// A local file, read on first use.
    File {
        /// The file.
        path: PathBuf,
        /// The contract once read.
        cached: Mutex<Option<Contract>>,
    },
}

impl ContractSource {
    /// The source `location` names: `s3://bucket/key` or a local path. No call is made.
    pub fn at(location: &str, client: &aws_sdk_s3::Client) -> Result<ContractSource> {
        match location.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, key) = rest
                    .split_once('/')
                    .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
                    .ok_or_else(|| Error::Configuration(format!("{location} is not s3://bucket/key")))?;
                Ok(ContractSource::S3 {
                    lake: Lake::new(client.clone(), bucket),
                    key: key.to_string(),
                    cached: Mutex::new(None),
                })
            }
            None => Ok(ContractSource::File { path: PathBuf::from(location), cached: Mutex::new(None) }),
        }
    }

    /// The contract as it stands now: from S3, one `HeadObject` per call and a `GetObject`
    /// only when the object's ETag changed since it was last read, so a fixed contract is in
    /// force at the next invocation (a re-drive after a fix uses the fix).
    pub async fn current(&self) -> Result<Contract> {
        match self {
            ContractSource::Fixed(contract) => Ok(contract.clone()),
            ContractSource::File { path, cached } => {
                let mut cached = cached.lock().await;
                if cached.is_none() {
                    *cached = Some(Contract::load(path)?);
                }
                cached.clone().ok_or_else(|| Error::Internal("the contract was not kept".to_string()))
            }
            ContractSource::S3 { lake, key, cached } => {
                let Some(etag) = lake.etag(key).await? else {
                    return Err(Error::Configuration(format!(
                        "there is no contract at s3://{bucket}/{key}: upload it (`aws s3 cp pipeline.toml s3://{bucket}/{key}`), then re-drive",
                        bucket = lake.bucket()
                    )));
                };
                let mut cached = cached.lock().await;
                if let Some((known, contract)) = cached.as_ref()
                    && *known == etag
                {
                    return Ok(contract.clone());
                }
                let location = format!("s3://{}/{key}", lake.bucket());
                let bytes = lake.get_bytes(key).await?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| Error::Configuration(format!("{location} is not UTF-8 text")))?;
                let contract = Contract::parse(&location, &text)?;
                if cached.is_some() {
                    tracing::info!(contract = %location, etag = %etag, "The contract changed; reloaded.");
                }
                *cached = Some((etag, contract.clone()));
                Ok(contract)
            }
        }
    }
}

/// Where the masking key comes from.
#[derive(Debug)]
pub enum KeySource {
    /// No key: the function does not mask.
    None,
    /// A key given outright.
    Fixed(MaskingKey),
    /// The key's text (`LAKESTAR_MASKING_KEY`), versioned by the contract.
    Text(String),
    /// A Secrets Manager secret, read on first use (again when the contract's key version changes).
    Secret {
        /// The Secrets Manager client.
        client: aws_sdk_secretsmanager::Client,
        /// The secret's id.
        secret_id: String,
        /// The key last read.
        cached: Mutex<Option<MaskingKey>>,
    },
}

impl KeySource {
    /// The key for a contract whose `masking.key_version` is `version`; `None` when there is none.
    pub async fn current(&self, version: &str) -> Result<Option<MaskingKey>> {
        match self {
            KeySource::None => Ok(None),
            KeySource::Fixed(key) => Ok(Some(key.clone())),
            KeySource::Text(text) => MaskingKey::from_secret_string(text, version).map(Some),
            KeySource::Secret { client, secret_id, cached } => {
                let mut cached = cached.lock().await;
                if let Some(key) = cached.as_ref() {
                    return Ok(Some(key.clone()));
                }
                let key = MaskingKey::from_secrets_manager(client, secret_id, version).await?;
                *cached = Some(key.clone());
                Ok(Some(key))
            }
        }
    }
}

/// Where the warehouse comes from.
#[derive(Debug)]
pub enum WarehouseSource {
    /// No warehouse: the function does not load.
    None,
    /// A pool given outright.
    Fixed(Warehouse),
    /// A URL, connected on first use.
    Url {
        /// `postgres://…` or `sqlite://…`.
        url: String,
        /// The pool once connected.
        cached: Mutex<Option<Warehouse>>,
    },
    /// The RDS secret, read and connected on first use; read again after an authentication
    /// failure (the managed secret rotates).
    Secret {
        /// The Secrets Manager client.
        client: aws_sdk_secretsmanager::Client,
        /// The secret's id.
        secret_id: String,
        /// Host, port and database when the secret lacks them.
        environment: Box<Environment>,
        /// The pool once connected.
        cached: Mutex<Option<Warehouse>>,
    },
}

impl WarehouseSource {
    /// The warehouse, connecting on first use; `None` when there is none.
    pub async fn current(&self) -> Result<Option<Warehouse>> {
        let (cached, connect) = match self {
            WarehouseSource::None => return Ok(None),
            WarehouseSource::Fixed(warehouse) => return Ok(Some(warehouse.clone())),
            WarehouseSource::Url { cached, .. } | WarehouseSource::Secret { cached, .. } => (cached, self),
        };
        let mut cached = cached.lock().await;
        if let Some(warehouse) = cached.as_ref() {
            return Ok(Some(warehouse.clone()));
        }
        let warehouse = connect.connect().await?;
        *cached = Some(warehouse.clone());
        Ok(Some(warehouse))
    }

    /// Forgets the pool (its connections close when the last clone is dropped): the next
    /// [`WarehouseSource::current`] connects again, reading the secret again.
    pub async fn invalidate(&self) {
        let (WarehouseSource::Url { cached, .. } | WarehouseSource::Secret { cached, .. }) = self else {
            return;
        };
        let forgotten = cached.lock().await.take();
        if let Some(Warehouse::Postgres(pool)) = forgotten {
            pool.close().await;
        }
    }

    async fn connect(&self) -> Result<Warehouse> {
        match self {
            WarehouseSource::Url { url, .. } => Warehouse::connect(url).await,
            WarehouseSource::Secret { client, secret_id, environment, .. } => {
                let secret = client.get_secret_value().secret_id(secret_id).send().await.map_err(|error| {
                    Error::WarehouseUnavailable {
                        target: format!("secret {secret_id}"),
                        step: "reading the database secret".to_string(),
                        sqlstate: None,
                        message: crate::error_chain(&error),
                    }
                })?;
                let text = secret.secret_string().ok_or_else(|| {
                    Error::Configuration(format!("the database secret {secret_id} has no SecretString"))
                })?;
                let options = crate::warehouse::postgres_options(text, environment)?;
                Warehouse::connect_postgres(options).await
            }
            WarehouseSource::None | WarehouseSource::Fixed(_) => {
                Err(Error::Internal("only a URL or a secret is connected".to_string()))
            }
        }
    }
}
