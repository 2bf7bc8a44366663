//! CloudWatch metrics in the embedded metric format (EMF): one JSON line on stdout per event,
//! which CloudWatch Logs turns into metrics with no API call and no latency on the turn.
//! Off unless `BESTCHAT_METRICS=emf` (the template sets it), so a laptop's output stays readable.

use std::io::Write as _;

use serde_json::{Map, Value, json};

/// The units CloudWatch knows that these metrics use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Milliseconds,
    Count,
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Milliseconds => "Milliseconds",
            Self::Count => "Count",
            Self::None => "None",
        }
    }
}

/// One value of one metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub value: f64,
}

impl Metric {
    pub fn millis(name: &'static str, ms: u64) -> Self {
        Self {
            name,
            unit: Unit::Milliseconds,
            value: ms as f64,
        }
    }

    pub fn count(name: &'static str, n: u64) -> Self {
        Self {
            name,
            unit: Unit::Count,
            value: n as f64,
        }
    }

    pub fn value(name: &'static str, value: f64) -> Self {
        Self {
            name,
            unit: Unit::None,
            value,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    /// `BESTCHAT_METRICS_NAMESPACE` when `BESTCHAT_METRICS=emf`; `None`: off.
    namespace: Option<String>,
}

impl Metrics {
    pub fn new(namespace: Option<String>) -> Self {
        Self { namespace }
    }

    /// Writes one EMF line; failures to write are not the caller's concern.
    pub fn emit(&self, dimensions: &[(&str, &str)], metrics: &[Metric]) {
        let Some(namespace) = &self.namespace else {
            return;
        };
        let line = emf_line(
            namespace,
            dimensions,
            metrics,
            bestchat_domain::time::now().timestamp_millis(),
        );
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}

/// The EMF document: dimension values and metric values at the top level, their declaration in
/// `_aws`.
pub fn emf_line(
    namespace: &str,
    dimensions: &[(&str, &str)],
    metrics: &[Metric],
    timestamp_ms: i64,
) -> String {
    let mut root = Map::new();
    for (name, value) in dimensions {
        root.insert((*name).to_owned(), json!(value));
    }
    for m in metrics.iter().filter(|m| m.value.is_finite()) {
        root.insert(m.name.to_owned(), json!(m.value));
    }
    let declared: Vec<Value> = metrics
        .iter()
        .filter(|m| m.value.is_finite())
        .map(|m| json!({ "Name": m.name, "Unit": m.unit.as_str() }))
        .collect();
    let names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [names],
                "Metrics": declared,
            }],
        }),
    );
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_declares_every_metric_and_dimension_it_carries() {
        let line = emf_line(
            "BestChat",
            &[("Provider", "openai")],
            &[
                Metric::millis("TimeToFirstToken", 240),
                Metric::count("OutputTokens", 12),
                Metric::value("CostUSD", 0.0015),
                Metric::value("Broken", f64::NAN),
            ],
            1_700_000_000_000,
        );
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["Provider"], "openai");
        assert_eq!(doc["TimeToFirstToken"], 240.0);
        assert_eq!(doc["CostUSD"], 0.0015);
        assert!(
            doc.get("Broken").is_none(),
            "a non-finite value is left out"
        );
        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(spec["Namespace"], "BestChat");
        assert_eq!(spec["Dimensions"], json!([["Provider"]]));
        assert_eq!(spec["Metrics"].as_array().unwrap().len(), 3);
        assert_eq!(
            spec["Metrics"][0],
            json!({"Name": "TimeToFirstToken", "Unit": "Milliseconds"})
        );
        assert!(!line.contains('\n'));
    }
}
