//! Median stopping: a trial stops at step s when its best value so far is worse than the
//! median (the true median: the mean of the middle two for an even count) of the completed
//! trials' values at step s.

use crate::history::{Direction, Trial, TrialState};

/// The median of non-empty `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        0.5 * (values[n / 2 - 1] + values[n / 2])
    }
}

/// See [`crate::EarlyStopping::MedianStop`].
pub fn should_stop(
    direction: Direction,
    trial: &Trial,
    history: &[Trial],
    min_trials_required: usize,
    start_step: u64,
) -> bool {
    let Some((step, _)) = trial.last() else {
        return false;
    };
    if step < start_step {
        return false;
    }
    let others: Vec<f64> = history
        .iter()
        .filter(|t| t.number != trial.number && t.state == TrialState::Completed)
        .filter_map(|t| {
            t.intermediate
                .iter()
                .find(|(s, _)| *s == step)
                .map(|(_, v)| direction.loss(*v))
        })
        .filter(|v| !v.is_nan())
        .collect();
    if others.len() < min_trials_required {
        return false;
    }
    let best = trial
        .intermediate
        .iter()
        .map(|(_, v)| direction.loss(*v))
        .filter(|v| !v.is_nan())
        .fold(f64::INFINITY, f64::min);
    best > median(others)
}
