//! Print schedules: a running pod annotated `kube-sim.trainctl.dev/print: every 1s step {n}`
//! prints that line (`{n}` is the line's number, from 1; `{env:NAME}` the value of its first
//! container's environment variable NAME) once per interval of simulated time, each line
//! stamped with the time it was due, until the pod ends.

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use crate::server::LogLine;

/// A parsed print schedule.
#[derive(Debug, PartialEq)]
pub(super) struct Schedule {
    every: SignedDuration,
    template: String,
}

/// Parses `every 1s <template>`; None when malformed or the interval is zero.
pub(super) fn parse_schedule(text: &str) -> Option<Schedule> {
    let rest = text.trim_start().strip_prefix("every ")?.trim_start();
    let (interval, template) = rest.split_once(' ').unwrap_or((rest, ""));
    let every = SignedDuration::try_from(super::kubelet::parse_duration(interval)?).ok()?;
    (!every.is_zero()).then(|| Schedule {
        every,
        template: template.to_string(),
    })
}

/// The template with every `{env:NAME}` replaced by the value of the pod's first container's
/// variable NAME (empty when it has none).
pub(super) fn with_env(template: &str, pod: &Value) -> String {
    let env = pod["spec"]["containers"][0]["env"].as_array();
    let value = |name: &str| {
        env.into_iter()
            .flatten()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_default()
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{env:") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(value(&rest[start + 5..start + len]));
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

impl Schedule {
    /// The lines due between the `printed`-th and `until` for a pod that started at
    /// `started`.
    pub(super) fn due(&self, started: Timestamp, printed: u64, until: Timestamp) -> Vec<LogLine> {
        let span = until.duration_since(started).as_secs_f64();
        let total = (span / self.every.as_secs_f64()).floor().max(0.0) as u64;
        (printed + 1..=total)
            .map(|n| LogLine {
                at: started + self.every * n as i32,
                text: self.template.replace("{n}", &n.to_string()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_prints_one_numbered_line_per_interval_stamped_when_due() {
        let schedule = parse_schedule("every 2s step {n} loss 0.5").unwrap();
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let lines = schedule.due(start, 1, start + SignedDuration::from_secs(7));
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["step 2 loss 0.5", "step 3 loss 0.5"]);
        assert_eq!(lines[1].at, start + SignedDuration::from_secs(6));
        assert_eq!(parse_schedule("every 0s x"), None);
        assert_eq!(parse_schedule("sometimes"), None);
    }

    #[test]
    fn env_placeholders_take_the_first_containers_values() {
        let pod = serde_json::json!({"spec": {"containers": [
            {"env": [{"name": "HP_X", "value": "0.25"}, {"name": "RANK", "value": "3"}]},
            {"env": [{"name": "HP_X", "value": "9"}]}
        ]}});
        assert_eq!(
            with_env("step {n} acc {env:HP_X} r{env:RANK} {env:NONE}.", &pod),
            "step {n} acc 0.25 r3 ."
        );
        assert_eq!(with_env("open {env:HP_X", &pod), "open {env:HP_X");
    }
}
