//! What the trigger does before it starts anything: S3 notifications and EventBridge
//! "Object Created" events reduced to landed objects, keys decoded, outputs and folder markers
//! ignored, datasets matched and run descriptors derived.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::Contract;
use crate::run::RunDescriptor;
use crate::{Error, Result};

/// The only prefix whose objects start executions.
pub const LANDING: &str = "landing/";

/// One object an event says was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandedObject {
    /// The bucket.
    pub bucket: String,
    /// The key, decoded.
    pub key: String,
    /// The version id, in a versioned bucket.
    pub version: Option<String>,
    /// The ETag.
    pub etag: Option<String>,
    /// The size in bytes.
    pub size: u64,
    /// When it was created.
    pub time: DateTime<Utc>,
}

/// What to do with one landed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start a run.
    Start(RunDescriptor),
    /// Not ours to process (outside `landing/`, a folder marker): why.
    Ignore(String),
    /// Under `landing/` but no dataset matches: the error says which key.
    Unmatched(String),
}

/// Encodes a key as S3 event notifications carry it: `+` for a space, `%XX` for other bytes
/// that are not unreserved (the inverse of [`decode_key`]).
pub fn encode_key(key: &str) -> String {
    crate::lake::percent_encode_key(key, "+")
}

/// Decodes an S3 event key: `+` is a space and `%XX` a byte, the bytes UTF-8.
pub fn decode_key(encoded: &str) -> Result<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(index + 1..index + 3).and_then(|pair| std::str::from_utf8(pair).ok());
                let byte = hex.and_then(|pair| u8::from_str_radix(pair, 16).ok()).ok_or_else(|| {
                    Error::InvalidInput(format!("the event key `{encoded}` has a malformed escape at byte {index}"))
                })?;
                out.push(byte);
                index += 2;
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8(out)
        .map_err(|_| Error::InvalidInput(format!("the event key `{encoded}` is not UTF-8 once decoded")))
}

#[derive(Debug, Serialize, Deserialize)]
struct EventBridgeDetail {
    bucket: EventBridgeBucket,
    object: EventBridgeObject,
}

#[derive(Debug, Serialize, Deserialize)]
struct EventBridgeBucket {
    name: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct EventBridgeObject {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default, rename = "version-id")]
    version_id: Option<String>,
}

/// The objects an event announces: an S3 notification (any number of records) or an
/// EventBridge "Object Created" event. Keys are decoded in both.
pub fn landed_objects(event: Value) -> Result<Vec<LandedObject>> {
    if event.get("Records").is_some() {
        let event: aws_lambda_events::event::s3::S3Event = serde_json::from_value(event)
            .map_err(|error| Error::InvalidInput(format!("not an S3 event notification: {error}")))?;
        let mut objects = Vec::with_capacity(event.records.len());
        for record in event.records {
            if !record.event_name.as_deref().unwrap_or("ObjectCreated").contains("ObjectCreated") {
                continue;
            }
            let (Some(bucket), Some(key)) = (record.s3.bucket.name, record.s3.object.key) else {
                return Err(Error::InvalidInput("an S3 event record without bucket name or object key".to_string()));
            };
            objects.push(LandedObject {
                bucket,
                key: decode_key(&key)?,
                version: record.s3.object.version_id.filter(|version| !version.is_empty()),
                etag: record.s3.object.e_tag,
                size: record.s3.object.size.unwrap_or(0).max(0) as u64,
                time: record.event_time,
            });
        }
        return Ok(objects);
    }
    if event.get("detail-type").is_some() {
        let event: aws_lambda_events::event::eventbridge::EventBridgeEvent<EventBridgeDetail> =
            serde_json::from_value(event)
                .map_err(|error| Error::InvalidInput(format!("not an EventBridge S3 event: {error}")))?;
        if event.detail_type != "Object Created" {
            return Ok(Vec::new());
        }
        return Ok(vec![LandedObject {
            bucket: event.detail.bucket.name,
            key: decode_key(&event.detail.object.key)?,
            version: event.detail.object.version_id,
            etag: event.detail.object.etag,
            size: event.detail.object.size.unwrap_or(0),
            time: event.time.unwrap_or_default(),
        }]);
    }
    Err(Error::InvalidInput(
        "the trigger takes S3 event notifications (`Records`) or EventBridge `Object Created` events".to_string(),
    ))
}

/// Decides what to do with a landed object.
pub fn decide(contract: &Contract, object: &LandedObject) -> Decision {
    if !object.key.starts_with(LANDING) {
        return Decision::Ignore(format!("outside {LANDING}"));
    }
    if object.key.ends_with('/') {
        return Decision::Ignore("a folder marker".to_string());
    }
    match contract.dataset_for_key(&object.key) {
        Ok(dataset) => Decision::Start(RunDescriptor::new(
            &dataset.name,
            &object.bucket,
            &object.key,
            object.version.as_deref(),
            object.etag.as_deref(),
            object.size,
            object.time,
        )),
        Err(error) => Decision::Unmatched(error.to_string()),
    }
}

/// What one invocation of the trigger did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerOutput {
    /// Execution names (run ids) started.
    pub started: Vec<String>,
    /// Run ids that already had an execution: repeated events.
    pub duplicates: Vec<String>,
    /// Objects ignored (outside `landing/`, folder markers).
    pub ignored: u64,
    /// Landing keys no dataset matches.
    pub unmatched: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_like_s3_encodes_them() {
        assert_eq!(decode_key("landing/red+flower.csv").ok().as_deref(), Some("landing/red flower.csv"));
        assert_eq!(decode_key("landing/a%2Bb.csv").ok().as_deref(), Some("landing/a+b.csv"));
        assert_eq!(decode_key("landing/caf%C3%A9+%26+co.csv").ok().as_deref(), Some("landing/café & co.csv"));
        assert_eq!(decode_key("landing/ventes%3D2024.csv").ok().as_deref(), Some("landing/ventes=2024.csv"));
        assert!(decode_key("landing/bad%2").is_err());
        assert!(decode_key("landing/bad%ZZ").is_err());
        assert!(decode_key("landing/%FF").is_err(), "not UTF-8");
    }
}
