//! Tree-structured Parzen estimator (as in Optuna 5): split the finished trials into the best
//! `min(ceil(0.1 n), 25)` and the rest, model both with Parzen estimators, draw candidates
//! from the good one and keep the candidate with the highest density ratio. Pruned trials
//! count after the completed ones, those that got further first.

use super::parzen::Parzen;
use super::{random, TpeSettings};
use crate::history::{observations, Direction, Observation, Trial};
use crate::rng::Rng;
use crate::space::{Assignment, Coord, Space};

const STREAM: u64 = 0x7470_6521; // "tpe!"

/// How many observations form the good group.
fn n_below(n: usize) -> usize {
    n.div_ceil(10).min(25)
}

/// The good and the other observations, each in trial-number order.
fn split(mut obs: Vec<Observation>) -> (Vec<Observation>, Vec<Observation>) {
    let wanted = n_below(obs.len());
    // Completed first, by loss; then pruned, the furthest first, by their last value.
    obs.sort_by(|a, b| {
        let rank = |o: &Observation| match o.pruned_at {
            None => (0u8, 0u64),
            Some(step) => (1u8, u64::MAX - step),
        };
        rank(a)
            .cmp(&rank(b))
            .then(a.loss.total_cmp(&b.loss))
            .then(a.number.cmp(&b.number))
    });
    let mut above = obs.split_off(wanted);
    obs.sort_by_key(|o| o.number);
    above.sort_by_key(|o| o.number);
    (obs, above)
}

/// Trial `number`'s TPE assignment (random while fewer than `n_startup_trials` finished).
pub fn suggest(
    space: &Space,
    direction: Direction,
    history: &[Trial],
    seed: u64,
    number: u64,
    settings: &TpeSettings,
    multivariate: bool,
) -> Assignment {
    let obs = observations(space, direction, history);
    if obs.len() < settings.n_startup_trials.max(1) {
        return random::suggest(space, seed, number);
    }
    let (below, above) = split(obs);
    let coords: Vec<Coord> = space.params().iter().map(|p| p.coord()).collect();
    let columns = |group: &[Observation]| -> Vec<Vec<f64>> {
        (0..coords.len())
            .map(|d| group.iter().map(|o| o.xs[d]).collect())
            .collect()
    };
    let (below, above) = (columns(&below), columns(&above));
    let mut rng = Rng::from_words(&[seed, number, STREAM]);
    let xs: Vec<f64> = if multivariate {
        best_candidate(&coords, &below, &above, settings, &mut rng)
    } else {
        (0..coords.len())
            .map(|d| {
                let (l, g) = (&below[d..=d], &above[d..=d]);
                best_candidate(&coords[d..=d], l, g, settings, &mut rng)[0]
            })
            .collect()
    };
    space.decode(&xs)
}

/// The candidate drawn from the good density that maximizes log l(x) - log g(x).
fn best_candidate(
    coords: &[Coord],
    below_columns: &[Vec<f64>],
    above_columns: &[Vec<f64>],
    settings: &TpeSettings,
    rng: &mut Rng,
) -> Vec<f64> {
    let l = Parzen::new(coords, below_columns, settings);
    let g = Parzen::new(coords, above_columns, settings);
    let mut best: Option<(f64, Vec<f64>)> = None;
    for candidate in l.sample(rng, settings.n_ei_candidates) {
        let score = l.log_pdf(&candidate) - g.log_pdf(&candidate);
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c).unwrap_or_default()
}
