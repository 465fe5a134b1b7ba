//! How long a job is expected to keep its GPUs, for the backfill reservation: from its
//! `activeDeadlineSeconds` (a hard bound), and from earlier successful runs of a job of the
//! same name (the longest of the latest [`ESTIMATE_RUNS`], so a backfilled job rarely
//! outlives the slot it was given). A job with neither, or one that has already run longer
//! than its earlier runs took, has no estimate: unknown means long.

/// How many of the latest successful runs of a name the estimate looks at.
pub const ESTIMATE_RUNS: usize = 5;

/// Where an expected run time comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EstimateSource {
    /// The job's deadline ends it sooner than its earlier runs took (or it has none).
    Deadline,
    /// Earlier successful runs of the same name (how many were read).
    EarlierRuns(usize),
}

/// The run time a job still needs, and where that comes from; `None` when unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Seconds still needed.
    pub remaining_s: f64,
    /// Where the number comes from.
    pub source: EstimateSource,
}

/// The expected remaining run time of a job that has run `ran_s` seconds, with deadline
/// `deadline_s` and `earlier_runs_s`, the run times of earlier successful runs of its name,
/// latest first (only the first [`ESTIMATE_RUNS`] count).
pub fn estimate(deadline_s: Option<f64>, earlier_runs_s: &[f64], ran_s: f64) -> Option<Estimate> {
    let recent = &earlier_runs_s[..earlier_runs_s.len().min(ESTIMATE_RUNS)];
    let from_runs = recent
        .iter()
        .copied()
        .filter(|r| r.is_finite() && *r >= 0.0)
        .reduce(f64::max)
        .filter(|longest| *longest > ran_s)
        .map(|longest| Estimate {
            remaining_s: longest - ran_s,
            source: EstimateSource::EarlierRuns(recent.len()),
        });
    let from_deadline = deadline_s.map(|d| Estimate {
        remaining_s: (d - ran_s).max(0.0),
        source: EstimateSource::Deadline,
    });
    match (from_runs, from_deadline) {
        (Some(r), Some(d)) if d.remaining_s < r.remaining_s => Some(d),
        (Some(r), _) => Some(r),
        (None, d) => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remaining(deadline: Option<f64>, runs: &[f64], ran: f64) -> Option<(f64, EstimateSource)> {
        estimate(deadline, runs, ran).map(|e| (e.remaining_s, e.source))
    }

    /// (deadline, earlier runs latest first, ran so far, expected remaining and source)
    type Row<'a> = (Option<f64>, &'a [f64], f64, Option<(f64, EstimateSource)>);

    #[test]
    fn the_estimate_table() {
        use EstimateSource::{Deadline, EarlierRuns};
        let table: &[Row] = &[
            // Nothing known: unknown means long.
            (None, &[], 0.0, None),
            // The deadline alone.
            (Some(600.0), &[], 100.0, Some((500.0, Deadline))),
            (Some(600.0), &[], 900.0, Some((0.0, Deadline))),
            // The longest of the earlier runs, less what it has run.
            (
                None,
                &[100.0, 300.0, 200.0],
                0.0,
                Some((300.0, EarlierRuns(3))),
            ),
            (
                None,
                &[100.0, 300.0, 200.0],
                50.0,
                Some((250.0, EarlierRuns(3))),
            ),
            // Only the latest five count: the old 10,000 s run is forgotten.
            (
                None,
                &[10.0, 20.0, 30.0, 40.0, 50.0, 10_000.0],
                0.0,
                Some((50.0, EarlierRuns(5))),
            ),
            // Run past every earlier run: the estimate was wrong, so unknown again...
            (None, &[100.0, 120.0], 130.0, None),
            // ...unless the deadline still bounds it.
            (
                Some(1_000.0),
                &[100.0, 120.0],
                130.0,
                Some((870.0, Deadline)),
            ),
            // The sooner of the two wins.
            (Some(200.0), &[500.0], 0.0, Some((200.0, Deadline))),
            (Some(900.0), &[500.0], 0.0, Some((500.0, EarlierRuns(1)))),
            // Nonsense durations are ignored.
            (None, &[f64::NAN, -5.0], 0.0, None),
        ];
        for (deadline, runs, ran, expected) in table {
            assert_eq!(
                remaining(*deadline, runs, *ran),
                *expected,
                "deadline {deadline:?}, runs {runs:?}, ran {ran}"
            );
        }
    }
}
