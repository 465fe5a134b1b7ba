//! Instant queries against a Prometheus HTTP API (`GET /api/v1/query`), for the DCGM
//! exporter's GPU series.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

/// One series of an instant vector: its labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (`__name__` included).
    pub labels: BTreeMap<String, String>,
    /// Its value now.
    pub value: f64,
}

impl Sample {
    /// The first of `names` that the series carries.
    pub fn label(&self, names: &[&str]) -> Option<&str> {
        names
            .iter()
            .find_map(|n| self.labels.get(*n))
            .map(String::as_str)
    }
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// The samples of a `/api/v1/query` answer; an error for a failed query or a result that is
/// not an instant vector.
pub fn parse(text: &str) -> Result<Vec<Sample>> {
    let answer: Answer =
        serde_json::from_str(text).context("the answer is not a Prometheus API response")?;
    if answer.status != "success" {
        bail!(
            "the query failed: {}",
            answer.error.unwrap_or_else(|| answer.status.clone())
        );
    }
    let data = answer
        .data
        .ok_or_else(|| anyhow!("the answer has no data"))?;
    if data.result_type != "vector" {
        bail!("expected an instant vector, got {}", data.result_type);
    }
    Ok(data
        .result
        .into_iter()
        .filter_map(|s| {
            let value = s.value.1.parse().ok()?;
            Some(Sample {
                labels: s.metric,
                value,
            })
        })
        .collect())
}

/// Runs `promql` at `base` (e.g. `http://prometheus:9090`), waiting at most `timeout`.
pub fn query(base: &str, promql: &str, timeout: Duration) -> Result<Vec<Sample>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
    let mut response = agent
        .get(&url)
        .query("query", promql)
        .call()
        .map_err(|e| anyhow!("{url}: {e}"))?;
    let status = response.status();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| anyhow!("{url}: {e}"))?;
    // Prometheus answers 400/422 with an error body; other statuses are not Prometheus.
    if !status.is_success() && !matches!(status.as_u16(), 400 | 422) {
        bail!("{url} answered {status}");
    }
    parse(&text).with_context(|| format!("{url} ({promql})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_vector_gives_each_series_labels_and_value() {
        let text = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"DCGM_FI_DEV_GPU_UTIL","gpu":"0","pod":"a"},"value":[1733100000.1,"87"]},
            {"metric":{"gpu":"1","exported_pod":"b"},"value":[1733100000.1,"NaN"]}]}}"#;
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].value, 87.0);
        assert_eq!(samples[0].label(&["pod", "exported_pod"]), Some("a"));
        assert_eq!(samples[1].label(&["pod", "exported_pod"]), Some("b"));
    }

    #[test]
    fn a_failed_query_or_a_foreign_answer_is_an_error_that_says_why() {
        let failed = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            parse(failed).unwrap_err().to_string(),
            "the query failed: parse error at char 5"
        );
        assert!(parse("<html>")
            .unwrap_err()
            .to_string()
            .contains("not a Prometheus API response"));
    }
}
