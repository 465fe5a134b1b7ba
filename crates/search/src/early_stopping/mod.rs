//! Early stopping: whether a running trial should stop now, from its intermediate values and
//! the other trials'. Pure, like the samplers: the same trials give the same decision.

mod median;
mod successive_halving;

use crate::history::{Direction, Trial};
use crate::settings::Settings;
use crate::SearchError;

/// The early-stopping algorithm names.
pub const EARLY_STOPPING_ALGORITHMS: &[&str] = &["medianstop", "asha", "hyperband"];

/// An early-stopping rule and its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum EarlyStopping {
    /// Stop a trial whose best value so far is worse than the median of the completed trials'
    /// values at its current step.
    MedianStop {
        /// Completed trials with a value at the step needed before any stop (default 3).
        min_trials_required: usize,
        /// No stop before this step (default 4).
        start_step: u64,
    },
    /// Asynchronous successive halving: at each rung (`min_resource * reduction_factor^k`
    /// steps) a trial goes on only if it is in the best `1 / reduction_factor` of the trials
    /// that reached the rung (the first to arrive always goes on).
    Asha(Halving),
    /// Hyperband: trials spread over ASHA brackets that start halving at different rungs.
    Hyperband(Halving),
}

/// Successive halving's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Halving {
    /// Steps before the first rung (`min_resource`, default 1).
    pub min_resource: f64,
    /// `reduction_factor` (default 3).
    pub reduction_factor: f64,
    /// Steps of a full trial (`max_resource`); when absent, the most steps a completed trial
    /// reported (the engine passes the template's `epochs`).
    pub max_resource: Option<f64>,
}

/// The settings of `medianstop`.
const MEDIAN_SETTINGS: &[&str] = &["min_trials_required", "start_step"];
/// The settings of `asha` and `hyperband`.
const HALVING_SETTINGS: &[&str] = &["min_resource", "reduction_factor", "max_resource"];

impl EarlyStopping {
    /// The setting names the rule `name` knows; `None` for an unknown rule.
    pub fn known_settings(name: &str) -> Option<&'static [&'static str]> {
        match name {
            "medianstop" => Some(MEDIAN_SETTINGS),
            "asha" | "hyperband" => Some(HALVING_SETTINGS),
            _ => None,
        }
    }

    /// The rule for a Katib `earlyStopping.algorithmName` and its settings; unknown names and
    /// settings are errors that list the known ones.
    pub fn new(name: &str, settings: &[(String, String)]) -> Result<EarlyStopping, SearchError> {
        match name {
            "medianstop" => {
                let s = Settings::check(name, settings, MEDIAN_SETTINGS)?;
                Ok(EarlyStopping::MedianStop {
                    min_trials_required: s.positive(&["min_trials_required"])?.unwrap_or(3)
                        as usize,
                    start_step: s.count(&["start_step"])?.unwrap_or(4),
                })
            }
            "asha" | "hyperband" => {
                let s = Settings::check(name, settings, HALVING_SETTINGS)?;
                let halving = Halving {
                    min_resource: s.positive_number(&["min_resource"])?.unwrap_or(1.0),
                    reduction_factor: s.positive_number(&["reduction_factor"])?.unwrap_or(3.0),
                    max_resource: s.positive_number(&["max_resource"])?,
                };
                if halving.reduction_factor < 2.0 {
                    return Err(SearchError::Setting(format!(
                        "setting reduction_factor of {name}: must be at least 2 (is {})",
                        halving.reduction_factor
                    )));
                }
                if halving
                    .max_resource
                    .is_some_and(|m| m <= halving.min_resource)
                {
                    return Err(SearchError::Setting(format!(
                        "settings of {name}: max_resource must be greater than min_resource ({})",
                        halving.min_resource
                    )));
                }
                Ok(if name == "asha" {
                    EarlyStopping::Asha(halving)
                } else {
                    EarlyStopping::Hyperband(halving)
                })
            }
            _ => Err(SearchError::Algorithm(format!(
                "unknown early stopping algorithm {name:?}; known: {}",
                EARLY_STOPPING_ALGORITHMS.join(", ")
            ))),
        }
    }

    /// Whether the running `trial` should stop now. `history` holds the experiment's trials
    /// (the trial itself may be among them); `since_step` is the trial's last step when this
    /// was last asked (`None` the first time), so that each successive-halving rung is judged
    /// once, when the trial crosses it.
    pub fn should_stop(
        &self,
        direction: Direction,
        trial: &Trial,
        history: &[Trial],
        since_step: Option<u64>,
    ) -> bool {
        match self {
            EarlyStopping::MedianStop {
                min_trials_required,
                start_step,
            } => median::should_stop(direction, trial, history, *min_trials_required, *start_step),
            EarlyStopping::Asha(h) => {
                successive_halving::asha_should_stop(h, direction, trial, history, since_step)
            }
            EarlyStopping::Hyperband(h) => {
                successive_halving::hyperband_should_stop(h, direction, trial, history, since_step)
            }
        }
    }
}
