//! Chart data: every series of a job, downsampled for display (extremes kept, and always the
//! last point). Each job's metrics stay in memory between requests and are polled
//! incrementally; a live viewer gets the whole picture once and then only the new points
//! (see [`Sent`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{json, Map, Value};
use trainctl_local::store::JobRow;
use trainctl_local::Home;
use trainctl_metrics::job::JobMetrics;
use trainctl_metrics::series::{downsample, Point, Run, Series};

use crate::server::ApiError;

/// Points per series when the request does not say.
pub const DEFAULT_POINTS: usize = 1000;
/// The most points per series a request may ask for.
pub const MAX_POINTS: usize = 20_000;
/// Jobs whose metrics stay in memory; beyond that the cache starts over.
const CACHED_JOBS: usize = 32;
/// A live viewer gets a fresh snapshot once a series it holds has grown past this many times
/// the requested points, so its page stays light however long the job runs.
const GROWTH_BEFORE_SNAPSHOT: usize = 2;

/// The points per series a request asks for, checked.
pub fn points_limit(points: Option<usize>) -> Result<usize, ApiError> {
    let max = points.unwrap_or(DEFAULT_POINTS);
    if !(2..=MAX_POINTS).contains(&max) {
        return Err(ApiError::BadRequest(format!(
            "points must be between 2 and {MAX_POINTS}, not {max}"
        )));
    }
    Ok(max)
}

/// The JSON of some points of some series: `{"runs": [{"run", "tags": {TAG: {"total",
/// "points": [[step, value], ...]}}}], "warnings": [...]}`.
fn chart_json<'a>(
    series: impl Iterator<Item = (&'a str, &'a str, usize, Vec<Point>)>,
    warnings: &[String],
) -> Value {
    let mut runs: Vec<(String, Map<String, Value>)> = Vec::new();
    for (run, tag, total, points) in series {
        if runs.last().is_none_or(|(name, _)| name != run) {
            runs.push((run.to_string(), Map::new()));
        }
        let shown: Vec<(i64, f64)> = points.iter().map(|p| (p.step, p.value)).collect();
        if let Some((_, tags)) = runs.last_mut() {
            tags.insert(tag.to_string(), json!({"total": total, "points": shown}));
        }
    }
    let runs: Vec<Value> = runs
        .into_iter()
        .map(|(run, tags)| json!({"run": run, "tags": tags}))
        .collect();
    json!({"runs": runs, "warnings": warnings})
}

/// Every series of `runs`, one after the other.
fn all_series<'a>(
    runs: &'a [(&'a str, &'a Run)],
) -> impl Iterator<Item = (&'a str, &'a str, &'a Series)> {
    runs.iter()
        .flat_map(|(run, r)| r.tags.iter().map(move |(tag, s)| (*run, tag.as_str(), s)))
}

/// Every series of `runs` with at most about `max` points each.
pub fn snapshot(runs: &[(&str, &Run)], warnings: &[String], max: usize) -> Value {
    chart_json(
        all_series(runs)
            .map(|(run, tag, s)| (run, tag, s.points().len(), downsample(s.points(), max))),
        warnings,
    )
}

/// What a live viewer should receive next.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Everything, replacing what it has (the `metrics` event).
    Full(Value),
    /// Points to add at the end of its series, new series included (the `append` event).
    Append(Value),
}

/// What one series' viewer holds: how many of the series' points it has seen, the step of
/// the last one, and how many it keeps on screen.
#[derive(Debug, Clone, Copy)]
struct Held {
    seen: usize,
    last_step: i64,
    shown: usize,
}

/// What one live viewer has been sent, so the next update carries only new points.
#[derive(Debug, Default)]
pub struct Sent {
    started: bool,
    series: HashMap<(String, String), Held>,
    warnings: Vec<String>,
}

impl Sent {
    /// The next update for this viewer, or None when nothing changed. The first is a full
    /// snapshot; later ones append new points, downsampled if many arrived at once. A series
    /// that went back (a restart from an older checkpoint drops points) or grew too long on
    /// screen brings a full snapshot again.
    pub fn update(
        &mut self,
        runs: &[(&str, &Run)],
        warnings: &[String],
        max: usize,
    ) -> Option<Update> {
        match self.appended(runs, max) {
            Some(added) if self.started => {
                if added.is_empty() && warnings == self.warnings {
                    return None;
                }
                for gain in &added {
                    self.series.insert(gain.key(), gain.held);
                }
                self.warnings = warnings.to_vec();
                let body = added
                    .into_iter()
                    .map(|g| (g.run, g.tag, g.held.seen, g.points));
                Some(Update::Append(chart_json(body, warnings)))
            }
            _ => {
                let full = snapshot(runs, warnings, max);
                self.started = true;
                self.warnings = warnings.to_vec();
                self.series = all_series(runs)
                    .filter_map(|(run, tag, s)| {
                        let last = s.points().last()?;
                        let held = Held {
                            seen: s.points().len(),
                            last_step: last.step,
                            shown: downsample(s.points(), max).len(),
                        };
                        Some(((run.to_string(), tag.to_string()), held))
                    })
                    .collect();
                Some(Update::Full(full))
            }
        }
    }

    /// What each series gained since the last update, or None when only a full snapshot
    /// will do.
    fn appended<'a>(&self, runs: &'a [(&'a str, &'a Run)], max: usize) -> Option<Vec<Gain<'a>>> {
        let mut out = Vec::new();
        let mut present = 0;
        for (run, tag, s) in all_series(runs) {
            let points = s.points();
            let Some(last) = points.last() else { continue };
            let before = self.series.get(&(run.to_string(), tag.to_string()));
            let new = match before {
                None => points,
                Some(held) => {
                    present += 1;
                    let intact = points.len() >= held.seen
                        && held
                            .seen
                            .checked_sub(1)
                            .and_then(|i| points.get(i))
                            .is_some_and(|p| p.step == held.last_step);
                    if !intact {
                        return None;
                    }
                    &points[held.seen..]
                }
            };
            if new.is_empty() {
                continue;
            }
            let sent = downsample(new, max);
            let shown = before.map_or(0, |h| h.shown) + sent.len();
            if shown > GROWTH_BEFORE_SNAPSHOT * max {
                return None;
            }
            let held = Held {
                seen: points.len(),
                last_step: last.step,
                shown,
            };
            out.push(Gain {
                run,
                tag,
                points: sent,
                held,
            });
        }
        (present == self.series.len()).then_some(out)
    }
}

/// New points of one series, and what its viewer holds once they are sent.
struct Gain<'a> {
    run: &'a str,
    tag: &'a str,
    points: Vec<Point>,
    held: Held,
}

impl Gain<'_> {
    fn key(&self) -> (String, String) {
        (self.run.to_string(), self.tag.to_string())
    }
}

/// The metrics of recently viewed local jobs.
#[derive(Default)]
pub struct Charts {
    jobs: Mutex<HashMap<String, Arc<Mutex<JobMetrics>>>>,
}

impl Charts {
    /// Reads the job's new points and hands every run, with the warnings of this read, to
    /// `view`.
    pub fn with_runs<T>(
        &self,
        home: &Home,
        job: &JobRow,
        view: impl FnOnce(&[(&str, &Run)], &[String]) -> T,
    ) -> Result<T, ApiError> {
        let metrics = self.metrics_of(home, job);
        let mut metrics = metrics.lock().unwrap_or_else(PoisonError::into_inner);
        let warnings: Vec<String> = metrics.poll()?.iter().map(ToString::to_string).collect();
        Ok(view(&metrics.runs(), &warnings))
    }

    /// The cached metrics of this incarnation of the job (a job deleted and created again
    /// under the same name starts afresh).
    fn metrics_of(&self, home: &Home, job: &JobRow) -> Arc<Mutex<JobMetrics>> {
        let key = format!("{}@{}", job.name, job.created);
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if !jobs.contains_key(&key) && jobs.len() >= CACHED_JOBS {
            jobs.clear();
        }
        jobs.entry(key)
            .or_insert_with(|| {
                let metrics =
                    JobMetrics::new(&home.job_dir(&job.name), &home.tensorboard_dir(&job.name));
                Arc::new(Mutex::new(metrics))
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(steps: impl IntoIterator<Item = i64>) -> Run {
        let mut run = Run::default();
        for step in steps {
            let point = Point {
                step,
                wall_time: 0.0,
                value: step as f64,
            };
            run.push("loss", point);
        }
        run
    }

    fn steps(update: &Update) -> Vec<i64> {
        let (Update::Full(v) | Update::Append(v)) = update;
        v["runs"][0]["tags"]["loss"]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_i64().unwrap())
            .collect()
    }

    #[test]
    fn a_viewer_gets_a_snapshot_then_only_new_points() {
        let mut sent = Sent::default();
        let first = sent.update(&[("w", &run_of(0..10))], &[], 100).unwrap();
        assert!(matches!(first, Update::Full(_)));
        assert_eq!(steps(&first), (0..10).collect::<Vec<_>>());
        assert_eq!(sent.update(&[("w", &run_of(0..10))], &[], 100), None);
        let next = sent.update(&[("w", &run_of(0..13))], &[], 100).unwrap();
        assert!(matches!(next, Update::Append(_)));
        assert_eq!(steps(&next), vec![10, 11, 12]);
        let (Update::Full(v) | Update::Append(v)) = &next;
        assert_eq!(v["runs"][0]["tags"]["loss"]["total"], 13);
    }

    #[test]
    fn a_series_that_went_back_or_grew_long_brings_a_snapshot() {
        let mut sent = Sent::default();
        sent.update(&[("w", &run_of(0..10))], &[], 4).unwrap();
        // A restart from step 5 dropped the points after it.
        let back = sent
            .update(&[("w", &run_of((0..5).chain(5..7)))], &[], 4)
            .unwrap();
        assert!(matches!(back, Update::Full(_)));
        // Appends stop once the screen would hold more than twice the points asked for.
        let mut steps_so_far = 7;
        let mut kinds = Vec::new();
        for _ in 0..4 {
            steps_so_far += 3;
            let update = sent
                .update(&[("w", &run_of(0..steps_so_far))], &[], 4)
                .unwrap();
            kinds.push(matches!(update, Update::Append(_)));
        }
        assert_eq!(kinds, vec![true, false, true, false]);
    }
}
