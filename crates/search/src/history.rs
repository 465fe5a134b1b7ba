//! What the samplers and stopping rules learn from: the trials so far.

use crate::space::{Assignment, Space};

/// Whether smaller or larger objective values are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Smaller is better.
    Minimize,
    /// Larger is better.
    Maximize,
}

impl Direction {
    /// The value as a loss (smaller is better): maximized objectives are negated.
    pub fn loss(self, value: f64) -> f64 {
        match self {
            Direction::Minimize => value,
            Direction::Maximize => -value,
        }
    }
}

/// Where a trial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialState {
    /// Suggested and not finished yet.
    Running,
    /// Finished with an objective value.
    Completed,
    /// Stopped by early stopping; its intermediate values still count.
    Pruned,
    /// Failed, or finished without the objective metric: it informs no sampler.
    Failed,
}

/// One trial as the samplers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// The trial's number in its experiment (0, 1, ...): its random streams derive from it.
    pub number: u64,
    /// The parameters it ran with.
    pub assignment: Assignment,
    /// Where it stands.
    pub state: TrialState,
    /// The objective value that counts (a completed trial's), in the objective's own direction.
    pub value: Option<f64>,
    /// The objective's values by step, in increasing step order.
    pub intermediate: Vec<(u64, f64)>,
}

impl Trial {
    /// The last reported step and its value.
    pub fn last(&self) -> Option<(u64, f64)> {
        self.intermediate.last().copied()
    }

    /// The value at the largest step not above `step`.
    pub fn value_at_or_before(&self, step: u64) -> Option<f64> {
        self.intermediate
            .iter()
            .take_while(|(s, _)| *s <= step)
            .last()
            .map(|(_, v)| *v)
    }
}

/// A finished trial in the sampler's coordinates, with its loss (smaller is better).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Observation {
    pub number: u64,
    pub xs: Vec<f64>,
    pub loss: f64,
    /// For a pruned trial: its last step (a trial that got further ranks first).
    pub pruned_at: Option<u64>,
}

/// The completed and pruned trials that belong to `space`, in trial-number order. A pruned
/// trial's loss is its last intermediate value; NaN losses count as the worst.
pub(crate) fn observations(
    space: &Space,
    direction: Direction,
    trials: &[Trial],
) -> Vec<Observation> {
    let mut out: Vec<Observation> = trials
        .iter()
        .filter_map(|t| {
            let xs = space.encode(&t.assignment)?;
            let (loss, pruned_at) = match t.state {
                TrialState::Completed => (direction.loss(t.value?), None),
                TrialState::Pruned => match t.last() {
                    Some((step, v)) => (direction.loss(v), Some(step)),
                    None => (f64::INFINITY, Some(0)),
                },
                TrialState::Running | TrialState::Failed => return None,
            };
            let loss = if loss.is_nan() { f64::INFINITY } else { loss };
            Some(Observation {
                number: t.number,
                xs,
                loss,
                pruned_at,
            })
        })
        .collect();
    out.sort_by_key(|o| o.number);
    out
}
