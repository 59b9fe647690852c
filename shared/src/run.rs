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
            id: run_id(dataset, bucket, key, version.or(etag), size, time),
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

/// The run id: `<dataset>-<YYYYmmddTHHMMSS>-<10 hex digits>`, at most 80 characters (a Step
/// Functions execution name). The digits hash bucket, key, version and size, so the same
/// object always gets the same id and a re-delivered event starts no second execution.
pub fn run_id(dataset: &str, bucket: &str, key: &str, version: Option<&str>, size: u64, time: DateTime<Utc>) -> String {
    let mut hasher = Sha256::new();
    for part in [bucket, key, version.unwrap_or("")] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.update(size.to_be_bytes());
    let digest = hasher.finalize();
    let hash: String = digest.iter().take(5).map(|byte| format!("{byte:02x}")).collect();
    let stem: String = dataset.chars().take(50).collect();
    format!("{stem}-{}-{hash}", time.format("%Y%m%dT%H%M%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-01-01T02:00:00Z").map(|t| t.with_timezone(&Utc)).expect("valid time")
    }

    #[test]
    fn run_id_is_stable_and_short() {
        let a = run_id("customers", "lake", "landing/a.csv", Some("v1"), 10, time());
        assert_eq!(a, run_id("customers", "lake", "landing/a.csv", Some("v1"), 10, time()));
        assert!(a.starts_with("customers-20240101T020000-"), "{a}");
        assert_eq!(a.len(), "customers-20240101T020000-".len() + 10);
        let long = run_id(&"x".repeat(63), "lake", "k", None, 0, time());
        assert!(long.len() <= 80);
    }

    #[test]
    fn run_id_changes_with_what_identifies_the_object() {
        let base = run_id("d", "lake", "landing/a.csv", Some("v1"), 10, time());
        assert_ne!(base, run_id("d", "lake", "landing/a.csv", Some("v2"), 10, time()));
        assert_ne!(base, run_id("d", "lake", "landing/a.csv", Some("v1"), 11, time()));
        assert_ne!(base, run_id("d", "lake", "landing/b.csv", Some("v1"), 10, time()));
        assert_ne!(base, run_id("d", "other", "landing/a.csv", Some("v1"), 10, time()));
    }
}
