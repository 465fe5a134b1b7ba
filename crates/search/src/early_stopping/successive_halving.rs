//! Asynchronous successive halving (ASHA) and Hyperband built on it.

use super::Halving;
use crate::history::{Direction, Trial, TrialState};
use crate::rng::mix;

/// The most steps a completed trial reported.
fn largest_completed_step(history: &[Trial]) -> Option<f64> {
    history
        .iter()
        .filter(|t| t.state == TrialState::Completed)
        .filter_map(|t| t.last().map(|(s, _)| s as f64))
        .reduce(f64::max)
}

/// The rungs one trial is judged at: `first_rung * reduction_factor^k` steps, below
/// `max_resource`.
struct Rungs<'a> {
    halving: &'a Halving,
    first_rung: f64,
    max_resource: Option<f64>,
}

/// Whether `trial` fails a rung it crossed since `since_step`, competing with the trials
/// `competes` admits.
fn fails_a_rung(
    rungs: Rungs,
    direction: Direction,
    trial: &Trial,
    history: &[Trial],
    since_step: Option<u64>,
    competes: impl Fn(&Trial) -> bool,
) -> bool {
    let Some((step, _)) = trial.last() else {
        return false;
    };
    let Rungs {
        halving: h,
        first_rung,
        max_resource,
    } = rungs;
    let mut rung = first_rung;
    while rung <= step as f64 && max_resource.is_none_or(|m| rung < m) {
        let crossed_now = since_step.is_none_or(|s| (s as f64) < rung);
        if crossed_now {
            let at_rung = |t: &Trial| {
                let reached = t.last().is_some_and(|(s, _)| s as f64 >= rung);
                reached
                    .then(|| t.value_at_or_before(rung.floor() as u64))
                    .flatten()
                    .map(|v| direction.loss(v))
            };
            let Some(own) = at_rung(trial) else {
                return false;
            };
            if own.is_nan() {
                return true;
            }
            let mut values: Vec<f64> = history
                .iter()
                .filter(|t| t.number != trial.number && t.state != TrialState::Failed)
                .filter(|t| competes(t))
                .filter_map(at_rung)
                .filter(|v| !v.is_nan())
                .collect();
            values.push(own);
            values.sort_by(f64::total_cmp);
            let promoted = (values.len() as f64 / h.reduction_factor).floor().max(1.0) as usize;
            if own > values[promoted - 1] {
                return true;
            }
        }
        rung *= h.reduction_factor;
    }
    false
}

/// See [`crate::EarlyStopping::Asha`].
pub fn asha_should_stop(
    h: &Halving,
    direction: Direction,
    trial: &Trial,
    history: &[Trial],
    since_step: Option<u64>,
) -> bool {
    let max_resource = h.max_resource.or_else(|| largest_completed_step(history));
    let rungs = Rungs {
        halving: h,
        first_rung: h.min_resource,
        max_resource,
    };
    fails_a_rung(rungs, direction, trial, history, since_step, |_| true)
}

/// The bracket of trial `number` among `n` brackets: bracket b (which starts halving at
/// `min_resource * reduction_factor^b`) gets a share of the trials proportional to its budget
/// `ceil(n * rf^(n-1-b) / (n-b))`, as in Optuna's Hyperband.
fn bracket(number: u64, n: usize, rf: f64) -> usize {
    let budgets: Vec<u64> = (0..n)
        .map(|b| {
            let s = (n - 1 - b) as i32;
            (n as f64 * rf.powi(s) / (s as f64 + 1.0)).ceil() as u64
        })
        .collect();
    let mut r = mix(number) % budgets.iter().sum::<u64>();
    for (b, budget) in budgets.iter().enumerate() {
        if r < *budget {
            return b;
        }
        r -= budget;
    }
    n - 1
}

/// See [`crate::EarlyStopping::Hyperband`]. Without `max_resource` and before any trial
/// completed, nothing is stopped (the brackets are not known yet).
pub fn hyperband_should_stop(
    h: &Halving,
    direction: Direction,
    trial: &Trial,
    history: &[Trial],
    since_step: Option<u64>,
) -> bool {
    let Some(max_resource) = h.max_resource.or_else(|| largest_completed_step(history)) else {
        return false;
    };
    let ratio = (max_resource / h.min_resource).max(1.0);
    let n = ((ratio.ln() / h.reduction_factor.ln()) + 1e-9).floor() as usize + 1;
    let own = bracket(trial.number, n, h.reduction_factor);
    let first_rung = h.min_resource * h.reduction_factor.powi(own as i32);
    let rungs = Rungs {
        halving: h,
        first_rung,
        max_resource: Some(max_resource),
    };
    fails_a_rung(rungs, direction, trial, history, since_step, |t| {
        bracket(t.number, n, h.reduction_factor) == own
    })
}
