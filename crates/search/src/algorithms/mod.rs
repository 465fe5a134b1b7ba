//! The samplers: which algorithm, its settings, and the dispatch from a history to the next
//! assignment.

mod cmaes;
mod grid;
mod linalg;
mod parzen;
mod random;
mod sobol;
mod tpe;

use crate::history::{Direction, Trial};
use crate::settings::Settings;
use crate::space::{Assignment, Space};
use crate::SearchError;

/// The algorithm names a `Sampler` knows.
pub const ALGORITHMS: &[&str] = &[
    "random",
    "grid",
    "sobol",
    "tpe",
    "multivariate-tpe",
    "cmaes",
];

/// TPE's settings, with Optuna's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TpeSettings {
    /// Trials drawn at random before TPE starts (`n_startup_trials`, default 10).
    pub n_startup_trials: usize,
    /// Candidates drawn from the good trials' density per suggestion (`n_ei_candidates`, 24).
    pub n_ei_candidates: usize,
    /// Weight of the prior kernel (`prior_weight`, 1.0).
    pub prior_weight: f64,
    /// Lower-bound the kernels' bandwidths as Optuna does (`consider_magic_clip`, true).
    pub consider_magic_clip: bool,
    /// Let the bounds widen the outermost kernels (`consider_endpoints`, false).
    pub consider_endpoints: bool,
}

impl Default for TpeSettings {
    fn default() -> Self {
        TpeSettings {
            n_startup_trials: 10,
            n_ei_candidates: 24,
            prior_weight: 1.0,
            consider_magic_clip: true,
            consider_endpoints: false,
        }
    }
}

/// CMA-ES's settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CmaesSettings {
    /// Initial step size in the unit cube (`sigma0`, Katib's `sigma`; default 1/6).
    pub sigma0: Option<f64>,
    /// Population size (`popsize`; default 4 + floor(3 ln n)).
    pub popsize: Option<usize>,
}

/// A search algorithm and its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Algorithm {
    /// Independent uniform draws.
    Random,
    /// Every point of the grid once, in order.
    Grid,
    /// A Sobol sequence (digitally shifted by the seed).
    Sobol,
    /// Tree-structured Parzen estimator, one density per parameter.
    Tpe(TpeSettings),
    /// TPE with one joint kernel per observation (Optuna's default sampler).
    MultivariateTpe(TpeSettings),
    /// Covariance matrix adaptation evolution strategy over the numeric parameters.
    Cmaes(CmaesSettings),
}

/// An algorithm with its seed: the complete recipe for suggestions.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampler {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The seed (`random_state`; 0 when not given).
    pub seed: u64,
}

/// The next trial's parameters, or the end of a finite search.
#[derive(Debug, Clone, PartialEq)]
pub enum Suggestion {
    /// Run a trial with these parameters.
    Assign(Assignment),
    /// Every point was suggested (a finished grid).
    Exhausted,
}

const TPE_SETTINGS: &[&str] = &[
    "random_state",
    "n_startup_trials",
    "n_startup_jobs",
    "n_ei_candidates",
    "n_EI_candidates",
    "prior_weight",
    "consider_magic_clip",
    "consider_endpoints",
];

impl Sampler {
    /// The setting names (aliases included) the algorithm `name` knows; `None` for an
    /// unknown algorithm.
    pub fn known_settings(name: &str) -> Option<&'static [&'static str]> {
        match name {
            "random" | "sobol" => Some(&["random_state"]),
            "grid" => Some(&[]),
            "tpe" | "multivariate-tpe" => Some(TPE_SETTINGS),
            "cmaes" => Some(&["random_state", "sigma0", "sigma", "popsize"]),
            _ => None,
        }
    }

    /// The sampler for a Katib `algorithmName` and `algorithmSettings`; unknown names and
    /// settings are errors that list the known ones.
    pub fn new(name: &str, settings: &[(String, String)]) -> Result<Sampler, SearchError> {
        let known = Sampler::known_settings(name).ok_or_else(|| {
            SearchError::Algorithm(format!(
                "unknown algorithm {name:?}; known algorithms: {}",
                ALGORITHMS.join(", ")
            ))
        })?;
        let s = Settings::check(name, settings, known)?;
        let seed = s.count(&["random_state"])?.unwrap_or(0);
        let algorithm = match name {
            "random" => Algorithm::Random,
            "grid" => Algorithm::Grid,
            "sobol" => Algorithm::Sobol,
            "cmaes" => Algorithm::Cmaes(CmaesSettings {
                sigma0: s.positive_number(&["sigma0", "sigma"])?,
                popsize: s.positive(&["popsize"])?.map(|p| p.max(2) as usize),
            }),
            _ => {
                let d = TpeSettings::default();
                let tpe = TpeSettings {
                    n_startup_trials: s
                        .count(&["n_startup_trials", "n_startup_jobs"])?
                        .map_or(d.n_startup_trials, |v| v as usize),
                    n_ei_candidates: s
                        .positive(&["n_ei_candidates", "n_EI_candidates"])?
                        .map_or(d.n_ei_candidates, |v| v as usize),
                    prior_weight: s.number(&["prior_weight"])?.unwrap_or(d.prior_weight),
                    consider_magic_clip: s
                        .flag(&["consider_magic_clip"])?
                        .unwrap_or(d.consider_magic_clip),
                    consider_endpoints: s
                        .flag(&["consider_endpoints"])?
                        .unwrap_or(d.consider_endpoints),
                };
                if name == "tpe" {
                    Algorithm::Tpe(tpe)
                } else {
                    Algorithm::MultivariateTpe(tpe)
                }
            }
        };
        Ok(Sampler { algorithm, seed })
    }

    /// Whether this sampler can search `space` (a grid needs every `double` stepped; Sobol
    /// has direction numbers for a limited number of parameters).
    pub fn check(&self, space: &Space) -> Result<(), SearchError> {
        match self.algorithm {
            Algorithm::Grid => grid::points(space).map(|_| ()),
            Algorithm::Sobol => sobol::check(space),
            _ => Ok(()),
        }
    }

    /// The assignment for trial `number`, from the trials so far. A pure function of the
    /// seed, `number` and the completed and pruned trials (a grid also skips the points of
    /// running and failed trials, so no point runs twice).
    pub fn suggest(
        &self,
        space: &Space,
        direction: Direction,
        history: &[Trial],
        number: u64,
    ) -> Result<Suggestion, SearchError> {
        self.check(space)?;
        Ok(match &self.algorithm {
            Algorithm::Random => Suggestion::Assign(random::suggest(space, self.seed, number)),
            Algorithm::Grid => grid::suggest(space, history)?,
            Algorithm::Sobol => Suggestion::Assign(sobol::suggest(space, self.seed, number)),
            Algorithm::Tpe(s) => Suggestion::Assign(tpe::suggest(
                space, direction, history, self.seed, number, s, false,
            )),
            Algorithm::MultivariateTpe(s) => Suggestion::Assign(tpe::suggest(
                space, direction, history, self.seed, number, s, true,
            )),
            Algorithm::Cmaes(s) => Suggestion::Assign(cmaes::suggest(
                space, direction, history, self.seed, number, s,
            )),
        })
    }
}
