//! What the trigger does before it starts anything: S3 notifications and EventBridge
//! "Object Created" events reduced to landed objects, keys decoded, outputs and folder markers
//! ignored, other buckets refused, datasets matched and run descriptors derived.

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
    /// From a bucket other than the lake's: refused (counted, logged, nothing started).
    Foreign(String),
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

/// One record of an event: the object it announces, or why it cannot be read (a record
/// on its own: the others of the same event are still decided).
pub type Record = std::result::Result<LandedObject, String>;

/// The records an event announces: an S3 notification (any number of records), an
/// EventBridge "Object Created" event, a Lambda on-failure destination record (a failed
/// invocation's `requestPayload`, as the trigger's queue holds it), or an SQS event whose
/// messages are any of these (how the queue is replayed). Keys are decoded. An event of
/// another shape is an error; a malformed record is one `Err` among the others.
pub fn landed_objects(event: Value) -> Result<Vec<Record>> {
    if let Some(payload) = event.get("requestPayload") {
        return landed_objects(payload.clone());
    }
    if let Some(records) = event.get("Records").and_then(Value::as_array)
        && records.iter().any(|record| record.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
    {
        let mut objects = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let body = record.get("body").and_then(Value::as_str).unwrap_or_default();
            match serde_json::from_str::<Value>(body)
                .map_err(|error| error.to_string())
                .and_then(|body| landed_objects(body).map_err(|error| error.to_string()))
            {
                Ok(records) => objects.extend(records),
                Err(error) => objects.push(Err(format!("queue message {index}: {error}"))),
            }
        }
        return Ok(objects);
    }
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        return Ok(records.iter().enumerate().filter_map(|(index, record)| s3_record(index, record)).collect());
    }
    if event.get("detail-type").is_some() {
        let event: aws_lambda_events::event::eventbridge::EventBridgeEvent<EventBridgeDetail> =
            serde_json::from_value(event)
                .map_err(|error| Error::InvalidInput(format!("not an EventBridge S3 event: {error}")))?;
        if event.detail_type != "Object Created" {
            return Ok(Vec::new());
        }
        let detail = event.detail;
        let object = decode_key(&detail.object.key).map_err(|error| error.to_string()).map(|key| LandedObject {
            bucket: detail.bucket.name,
            key,
            version: detail.object.version_id.filter(|version| !version.is_empty()),
            etag: detail.object.etag.map(|etag| etag.trim_matches('"').to_string()),
            size: detail.object.size.unwrap_or(0),
            time: event.time.unwrap_or_default(),
        });
        return Ok(vec![object]);
    }
    Err(Error::InvalidInput(
        "the trigger takes S3 event notifications (`Records`), EventBridge `Object Created` events, or the trigger queue's records of either".to_string(),
    ))
}

/// One record of an S3 notification; `None` for events other than object creation.
fn s3_record(index: usize, record: &Value) -> Option<Record> {
    let record: aws_lambda_events::event::s3::S3EventRecord = match serde_json::from_value(record.clone()) {
        Ok(record) => record,
        Err(error) => return Some(Err(format!("record {index} is not an S3 event record: {error}"))),
    };
    if !record.event_name.as_deref().unwrap_or("ObjectCreated").contains("ObjectCreated") {
        return None;
    }
    let (Some(bucket), Some(key)) = (record.s3.bucket.name, record.s3.object.key) else {
        return Some(Err(format!("record {index} has no bucket name or object key")));
    };
    Some(match decode_key(&key) {
        Ok(key) => Ok(LandedObject {
            bucket,
            key,
            version: record.s3.object.version_id.filter(|version| !version.is_empty()),
            etag: record.s3.object.e_tag.map(|etag| etag.trim_matches('"').to_string()),
            size: record.s3.object.size.unwrap_or(0).max(0) as u64,
            time: record.event_time,
        }),
        Err(error) => Err(format!("record {index}: {error}")),
    })
}

/// Decides what to do with a landed object of the lake bucket `lake_bucket`.
pub fn decide(contract: &Contract, lake_bucket: &str, object: &LandedObject) -> Decision {
    if object.bucket != lake_bucket {
        return Decision::Foreign(format!("bucket `{}` is not the lake bucket `{lake_bucket}`", object.bucket));
    }
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
    /// Objects of other buckets, refused.
    #[serde(default)]
    pub foreign: u64,
    /// Records that could not be read, each with why (the others were decided).
    #[serde(default)]
    pub invalid: Vec<String>,
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
