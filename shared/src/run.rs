//! Run identity: the descriptor every stage receives, and the run id derived from the object
//! that started it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What identifies one run: the landed object and the dataset it belongs to. This is the
/// `run` section of the state input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunDescriptor {
    /// The run id, also the Step Functions execution name.
    pub id: String,
    /// The dataset the object belongs to.
    pub dataset: String,
    /// The bucket holding the object.
    pub bucket: String,
    /// The object's key (decoded, not URL-encoded).
    pub key: String,
    /// The object's version id, when the bucket is versioned; the stages read that version.
    #[serde(default)]
    pub version: Option<String>,
    /// The object's size in bytes.
    pub size: u64,
    /// When the object landed (the event's time); `_ingested_at` and the partition date come
    /// from it, so re-runs write identical data.
    pub time: DateTime<Utc>,
}

impl RunDescriptor {
    /// Builds a descriptor for an object, deriving the run id from what identifies it: its
    /// version id in a versioned bucket, else its ETag.
    pub fn new(
        dataset: &str,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        etag: Option<&str>,
        size: u64,
        time: DateTime<Utc>,
    ) -> RunDescriptor {
        RunDescriptor {
            id: run_id(dataset, bucket, key, version.or(etag).map(|tag| tag.trim_matches('"')), size),
            dataset: dataset.to_string(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            version: version.map(str::to_string),
            size,
            time,
        }
    }

    /// The `YYYY-MM-DD` date of the run, used in `ingest_date=` partitions.
    pub fn ingest_date(&self) -> String {
        self.time.format("%Y-%m-%d").to_string()
    }

    /// The object's file name: the last segment of its key.
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

/// The run id: `<dataset>-<20 hex digits>`, at most 80 characters (a Step Functions
/// execution name). The digits hash only what identifies the object (bucket, key, version id
/// or ETag, size), never the event's time: the same object version delivered again (a
/// replay, an S3 notification and an EventBridge event both on) is the same run, and starts
/// no second execution.
pub fn run_id(dataset: &str, bucket: &str, key: &str, version: Option<&str>, size: u64) -> String {
    let mut hasher = Sha256::new();
    for part in [bucket, key, version.unwrap_or("")] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.update(size.to_be_bytes());
    let digest = hasher.finalize();
    let hash: String = digest.iter().take(10).map(|byte| format!("{byte:02x}")).collect();
    let stem: String = dataset.chars().take(50).collect();
    format!("{stem}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).expect("valid time")
    }

    #[test]
    fn run_id_is_stable_short_and_independent_of_the_event_time() {
        let a = run_id("customers", "lake", "landing/a.csv", Some("v1"), 10);
        assert_eq!(a, run_id("customers", "lake", "landing/a.csv", Some("v1"), 10));
        assert!(a.starts_with("customers-"), "{a}");
        assert_eq!(a.len(), "customers-".len() + 20);
        assert!(run_id(&"x".repeat(63), "lake", "k", None, 0).len() <= 80);
        let first =
            RunDescriptor::new("d", "lake", "landing/a.csv", None, Some("\"abc\""), 10, time("2024-01-01T02:00:00Z"));
        let replayed =
            RunDescriptor::new("d", "lake", "landing/a.csv", None, Some("abc"), 10, time("2024-03-09T17:45:00Z"));
        assert_eq!(first.id, replayed.id, "a replay with another time and an unquoted ETag is the same run");
    }

    #[test]
    fn run_id_changes_with_what_identifies_the_object() {
        let base = run_id("d", "lake", "landing/a.csv", Some("v1"), 10);
        assert_ne!(base, run_id("d", "lake", "landing/a.csv", Some("v2"), 10));
        assert_ne!(base, run_id("d", "lake", "landing/a.csv", Some("v1"), 11));
        assert_ne!(base, run_id("d", "lake", "landing/b.csv", Some("v1"), 10));
        assert_ne!(base, run_id("d", "other", "landing/a.csv", Some("v1"), 10));
    }
}
