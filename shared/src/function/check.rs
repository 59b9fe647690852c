//! The check API: `lakestar validate` behind a Lambda function URL. It takes a function URL
//! request (payload format 2.0) and answers one: the same JSON report as
//! `lakestar validate --json`, for an object already under `landing/` in the lake bucket
//! (`{"key": "landing/…"}`) or for a file sent as the body (`?name=<file name>`, up to the
//! 6 MB a function URL accepts). The stages run in a scratch store in the function's
//! temporary folder: nothing is written to the lake. `lakestar serve` answers the same
//! requests offline through this same handler.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};

use crate::dry_run::{DryRunOptions, dataset_for, dry_run};
use crate::function::ContractSource;
use crate::lake::Lake;
use crate::{Error, Result};

/// The largest body a function URL takes.
pub const MAX_BODY: usize = 6 * 1024 * 1024;

/// The check function: the lake bucket it reads and where the contract is.
#[derive(Debug)]
pub struct CheckFunction {
    lake: Lake,
    contract: ContractSource,
}

/// A failed request: its HTTP status and a message saying what to do.
struct Refusal {
    status: u16,
    error: String,
    message: String,
}

impl Refusal {
    fn new(status: u16, error: &str, message: impl Into<String>) -> Refusal {
        Refusal { status, error: error.to_string(), message: message.into() }
    }
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Refusal {
        // A file that is not its dataset's (or no dataset's) is the caller's to fix: 422,
        // as `lakestar validate` exits 2; what passes (S3 down) or is ours is a 5xx.
        let status = match &error {
            Error::UnknownDataset { .. }
            | Error::AmbiguousDataset { .. }
            | Error::SchemaMismatch { .. }
            | Error::SchemaDrift { .. }
            | Error::UnreadableFile { .. }
            | Error::InvalidInput(_)
            | Error::CorruptObject { .. } => 422,
            Error::Contract(_) | Error::Configuration(_) => 424,
            Error::S3 { .. } => 502,
            _ => 500,
        };
        Refusal { status, error: error.error_type().to_string(), message: error.to_string() }
    }
}

impl CheckFunction {
    /// A check of objects in `lake`, with the contract from `contract`.
    pub fn new(lake: Lake, contract: ContractSource) -> CheckFunction {
        CheckFunction { lake, contract }
    }

    /// Answers one function URL request with a function URL response.
    pub async fn handle(&self, request: &Value) -> Value {
        match self.answer(request).await {
            Ok(report) => response(200, &report),
            Err(refusal) => {
                tracing::warn!(status = refusal.status, error = %refusal.error, "Check refused.");
                response(refusal.status, &json!({"error": refusal.error, "message": refusal.message}))
            }
        }
    }

    async fn answer(&self, request: &Value) -> std::result::Result<Value, Refusal> {
        let method = request.pointer("/requestContext/http/method").and_then(Value::as_str).unwrap_or("POST");
        if method != "POST" {
            return Err(Refusal::new(405, "MethodNotAllowed", "POST a file, or {\"key\": \"landing/…\"}"));
        }
        let query: BTreeMap<String, String> = request
            .get("queryStringParameters")
            .and_then(Value::as_object)
            .map(|query| {
                query
                    .iter()
                    .filter_map(|(name, value)| value.as_str().map(|value| (name.clone(), value.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let body = body(request)?;
        let rows = match query.get("rows") {
            Some(text) => text.parse().map_err(|_| Refusal::new(400, "BadRequest", "`rows` is a number of rows"))?,
            None => DryRunOptions::default().rejected_rows,
        };
        let show_values = query.get("show_values").is_some_and(|value| value == "true" || value == "1");
        let options = DryRunOptions { rejected_rows: rows, show_values };
        let contract = self.contract.current().await?;

        let (key, bytes, named) = match query.get("name") {
            Some(name) => {
                let name = name.trim_start_matches('/');
                let key = if name.starts_with("landing/") {
                    name.to_string()
                } else {
                    crate::dry_run::key_for(&contract, &format!("landing/{name}"))
                };
                (key, body, query.get("dataset").cloned())
            }
            None => {
                let asked: Value = serde_json::from_slice(&body).map_err(|_| {
                    Refusal::new(
                        400,
                        "BadRequest",
                        "send {\"key\": \"landing/…\"} as JSON, or the file itself with ?name=<file name>",
                    )
                })?;
                let key = asked.get("key").and_then(Value::as_str).ok_or_else(|| {
                    Refusal::new(400, "BadRequest", "the JSON needs a \"key\" naming an object under landing/")
                })?;
                if !key.starts_with("landing/") || key.contains("..") {
                    return Err(Refusal::new(
                        403,
                        "Forbidden",
                        format!("{key}: the check reads only objects under landing/"),
                    ));
                }
                if self.lake.etag(key).await?.is_none() {
                    return Err(Refusal::new(
                        404,
                        "NoSuchKey",
                        format!("there is no object {key} in s3://{}", self.lake.bucket()),
                    ));
                }
                let dataset =
                    asked.get("dataset").and_then(Value::as_str).map(str::to_string).or(query.get("dataset").cloned());
                (key.to_string(), self.lake.get_bytes(key).await?, dataset)
            }
        };
        let dataset = dataset_for(&contract, &key, named.as_deref())?.name.clone();
        let scratch = crate::dry_run::Scratch::start().await?;
        let size = bytes.len() as u64;
        scratch.lake.put_bytes(&key, bytes, "application/octet-stream").await?;
        let report = dry_run(&scratch.lake, &contract, &dataset, &key, size, options).await?;
        serde_json::to_value(report).map_err(|error| Refusal::new(500, "Internal", error.to_string()))
    }
}

/// The request's body, decoded when the function URL sent it base64-encoded.
fn body(request: &Value) -> std::result::Result<Vec<u8>, Refusal> {
    let text = request.get("body").and_then(Value::as_str).unwrap_or_default();
    let bytes = if request.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false) {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| Refusal::new(400, "BadRequest", "the body is marked base64 but is not"))?
    } else {
        text.as_bytes().to_vec()
    };
    if bytes.len() > MAX_BODY {
        return Err(Refusal::new(
            413,
            "PayloadTooLarge",
            "a function URL takes up to 6 MB: put the file under landing/ and send {\"key\": …} instead",
        ));
    }
    Ok(bytes)
}

/// A function URL response with a JSON body.
fn response(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": serde_json::to_string_pretty(body).unwrap_or_default(),
        "isBase64Encoded": false,
    })
}

/// The check function from the environment (the lake bucket, the contract's location).
pub async fn from_env(environment: &crate::config::Environment) -> Result<CheckFunction> {
    let client = super::s3_client(environment).await;
    let lake = super::lake(client.clone(), environment)?;
    let contract = ContractSource::at(&environment.contract_location(lake.bucket()), &client)?;
    Ok(CheckFunction::new(lake, contract))
}
