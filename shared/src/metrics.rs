//! CloudWatch embedded-metric-format (EMF) lines: metrics published by printing one JSON
//! line to stdout, which Lambda's log pipeline turns into CloudWatch metrics (no API call).

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of Lakestar's metrics.
pub const NAMESPACE: &str = "Lakestar";

/// An EMF document for `metrics` (name, count) with the given dimensions.
pub fn emf_line(dimensions: &[(&str, &str)], metrics: &[(&str, f64, &str)], timestamp_ms: i64) -> String {
    let mut document = Map::new();
    document.insert(
        "_aws".to_string(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(name, _)| *name).collect::<Vec<_>>()],
                "Metrics": metrics.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    for (name, value) in dimensions {
        document.insert((*name).to_string(), Value::from(*value));
    }
    for (name, value, _) in metrics {
        document.insert((*name).to_string(), json!(value));
    }
    Value::Object(document).to_string()
}

/// Prints an EMF line for the current time, inside Lambda (where stdout is the function's
/// log); elsewhere (the offline stack, tests) the line would only clutter the terminal.
pub fn emit(dimensions: &[(&str, &str)], metrics: &[(&str, f64, &str)]) {
    if crate::config::Environment::get().in_lambda {
        println!("{}", emf_line(dimensions, metrics, chrono::Utc::now().timestamp_millis()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_declares_its_metrics_and_carries_their_values() {
        let line = emf_line(&[("Stage", "trigger")], &[("UnmatchedObjects", 2.0, "Count")], 1_700_000_000_000);
        let value: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Lakestar");
        assert_eq!(value["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0], "Stage");
        assert_eq!(value["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "UnmatchedObjects");
        assert_eq!(value["Stage"], "trigger");
        assert_eq!(value["UnmatchedObjects"], 2.0);
        assert_eq!(value["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }
}
