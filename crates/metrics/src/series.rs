//! Points of one tag in one run, kept in step order across restarts.

use std::collections::BTreeMap;

use serde::Serialize;

/// One scalar at one step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// Global step.
    pub step: i64,
    /// Seconds since the Unix epoch when it was recorded.
    pub wall_time: f64,
    /// The value.
    pub value: f64,
}

/// The points of one tag, in increasing step order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    points: Vec<Point>,
}

impl Series {
    /// Adds a point. When the step goes back (the job restarted from an older checkpoint),
    /// the older points at and after the new step are dropped first, as TensorBoard does, so
    /// the series shows the run that actually continued.
    pub fn push(&mut self, point: Point) {
        if self
            .points
            .last()
            .is_some_and(|last| point.step <= last.step)
        {
            let keep = self.points.partition_point(|p| p.step < point.step);
            self.points.truncate(keep);
        }
        self.points.push(point);
    }

    /// The points, in step order.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// The figures `trainctl metrics` prints; `None` for an empty series.
    pub fn stats(&self) -> Option<Stats> {
        let last = *self.points.last()?;
        let (min, max) = self
            .points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                (lo.min(p.value), hi.max(p.value))
            });
        Some(Stats {
            points: self.points.len(),
            step: last.step,
            last: last.value,
            min,
            max,
        })
    }
}

/// At most about `max` points of `points` for display: the smallest and the largest value
/// of each of `max / 2` equal slices, in step order, and always the last point.
pub fn downsample(points: &[Point], max: usize) -> Vec<Point> {
    let buckets = (max / 2).max(1);
    if points.len() <= max.max(2) {
        return points.to_vec();
    }
    let size = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(buckets * 2 + 1);
    for chunk in points.chunks(size) {
        let lo = chunk.iter().min_by(|a, b| a.value.total_cmp(&b.value));
        let hi = chunk.iter().max_by(|a, b| a.value.total_cmp(&b.value));
        if let (Some(lo), Some(hi)) = (lo, hi) {
            let (first, second) = if lo.step <= hi.step {
                (lo, hi)
            } else {
                (hi, lo)
            };
            out.push(*first);
            if second != first {
                out.push(*second);
            }
        }
    }
    if let Some(last) = points.last() {
        if out.last() != Some(last) {
            out.push(*last);
        }
    }
    out
}

/// Summary figures of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stats {
    /// How many points.
    pub points: usize,
    /// The last step.
    pub step: i64,
    /// The value at the last step.
    pub last: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

/// The series of one run, by tag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    /// Tag to series.
    pub tags: BTreeMap<String, Series>,
}

impl Run {
    /// Adds a point to the tag's series.
    pub fn push(&mut self, tag: &str, point: Point) {
        match self.tags.get_mut(tag) {
            Some(series) => series.push(point),
            None => {
                let mut series = Series::default();
                series.push(point);
                self.tags.insert(tag.to_string(), series);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(step: i64) -> Point {
        Point {
            step,
            wall_time: 0.0,
            value: step as f64,
        }
    }

    #[test]
    fn a_restart_drops_points_at_and_after_the_new_step() {
        let mut s = Series::default();
        for step in [1, 2, 3, 4, 5, 3, 4] {
            s.push(at(step));
        }
        let steps: Vec<i64> = s.points().iter().map(|p| p.step).collect();
        assert_eq!(steps, [1, 2, 3, 4]);
        let stats = s.stats().unwrap();
        assert_eq!(
            (stats.points, stats.step, stats.min, stats.max),
            (4, 4, 1.0, 4.0)
        );
    }

    #[test]
    fn downsampling_keeps_extremes_and_the_last_point() {
        let mut points: Vec<Point> = (0..10_000).map(at).collect();
        points[5000].value = -1.0;
        let few = downsample(&points, 100);
        assert!(few.len() <= 101, "{} points", few.len());
        assert!(few.iter().any(|p| p.value == -1.0));
        assert_eq!(few.last(), points.last());
        assert!(few.windows(2).all(|w| w[0].step < w[1].step));
    }
}
