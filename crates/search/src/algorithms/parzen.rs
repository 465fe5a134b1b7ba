//! The Parzen estimator TPE builds from a group of observations: a mixture with one kernel per
//! observation plus a prior kernel, truncated normals for numbers (in log space for log
//! parameters, with bin masses for grids) and smoothed indicators for choices. Bandwidths
//! follow Optuna: the larger gap to a sorted neighbour, clipped to
//! `[range / min(100, n + 2), range]` ("magic clip").

use super::TpeSettings;
use crate::math::{log_normal_mass, log_normal_pdf, log_sum_exp};
use crate::rng::Rng;
use crate::space::Coord;

/// One parameter's kernels.
enum DimKernels {
    Numeric {
        mus: Vec<f64>,
        sigmas: Vec<f64>,
        /// log(sigma) + log(mass of the kernel inside the bounds), per kernel.
        log_norms: Vec<f64>,
        /// Bounds in the kernel's space (log-scaled, widened by half a step on grids).
        low: f64,
        high: f64,
        log: bool,
        step: Option<f64>,
        /// Bounds of the values themselves.
        value_low: f64,
        value_high: f64,
    },
    Choice {
        /// log-probabilities, per kernel and choice.
        log_probs: Vec<Vec<f64>>,
    },
}

/// A mixture of product kernels over some parameters (one, for independent TPE; all, for
/// multivariate TPE).
pub struct Parzen {
    log_weights: Vec<f64>,
    weights: Vec<f64>,
    dims: Vec<DimKernels>,
}

/// Optuna's observation weights: older observations ramp up from 1/n once there are more than
/// 25, the newest 25 weigh 1.
fn observation_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let mut w: Vec<f64> = (0..ramp)
        .map(|i| {
            if ramp == 1 {
                1.0 / n as f64
            } else {
                1.0 / n as f64 + (1.0 - 1.0 / n as f64) * i as f64 / (ramp - 1) as f64
            }
        })
        .collect();
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

impl Parzen {
    /// The estimator of observations given as `columns` (one per coordinate, each in
    /// trial-number order) over `coords`.
    pub fn new(coords: &[Coord], columns: &[Vec<f64>], settings: &TpeSettings) -> Parzen {
        let n = columns.first().map_or(0, Vec::len);
        let mut weights = observation_weights(n);
        weights.push(if n == 0 { 1.0 } else { settings.prior_weight });
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        let dims = coords
            .iter()
            .zip(columns)
            .map(|(c, column)| dim_kernels(*c, column, settings))
            .collect();
        Parzen {
            log_weights: weights.iter().map(|w| w.ln()).collect(),
            weights,
            dims,
        }
    }

    /// `count` points drawn from the mixture, in coordinates.
    pub fn sample(&self, rng: &mut Rng, count: usize) -> Vec<Vec<f64>> {
        (0..count)
            .map(|_| {
                let k = rng.weighted(&self.weights);
                self.dims.iter().map(|d| sample_dim(d, k, rng)).collect()
            })
            .collect()
    }

    /// The log density (up to a constant shared by every estimator over the same space).
    pub fn log_pdf(&self, x: &[f64]) -> f64 {
        let mut per_kernel = self.log_weights.clone();
        for (d, xi) in self.dims.iter().zip(x) {
            add_log_pdf_dim(d, *xi, &mut per_kernel);
        }
        log_sum_exp(&per_kernel)
    }
}

fn dim_kernels(coord: Coord, column: &[f64], settings: &TpeSettings) -> DimKernels {
    match coord {
        Coord::Choice { n: choices } => {
            let kernels = column.len() + 1;
            let mut log_probs = Vec::with_capacity(kernels);
            for obs in column {
                let base = settings.prior_weight / kernels as f64;
                let mut row = vec![base; choices];
                row[(*obs as usize).min(choices - 1)] += 1.0;
                let sum: f64 = row.iter().sum();
                log_probs.push(row.iter().map(|p| (p / sum).ln()).collect());
            }
            log_probs.push(vec![-(choices as f64).ln(); choices]);
            DimKernels::Choice { log_probs }
        }
        Coord::Numeric {
            low: value_low,
            high: value_high,
            log,
            step,
        } => {
            let half = step.map_or(0.0, |s| s / 2.0);
            let scale = |v: f64| if log { v.ln() } else { v };
            let (low, high) = (scale(value_low - half), scale(value_high + half));
            let mut mus: Vec<f64> = column.iter().map(|v| scale(*v)).collect();
            let mut sigmas = bandwidths(&mus, low, high, settings);
            mus.push(0.5 * (low + high));
            sigmas.push(high - low);
            let log_norms = mus
                .iter()
                .zip(&sigmas)
                .map(|(m, s)| s.ln() + log_normal_mass((low - m) / s, (high - m) / s))
                .collect();
            DimKernels::Numeric {
                mus,
                sigmas,
                log_norms,
                low,
                high,
                log,
                step,
                value_low,
                value_high,
            }
        }
    }
}

/// Each observation's bandwidth: the larger distance to its sorted neighbours (the bounds
/// count as neighbours), clipped.
fn bandwidths(mus: &[f64], low: f64, high: f64, settings: &TpeSettings) -> Vec<f64> {
    let n = mus.len();
    if n == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| mus[*a].total_cmp(&mus[*b]));
    let mut sorted = Vec::with_capacity(n + 2);
    sorted.push(low);
    sorted.extend(order.iter().map(|i| mus[*i]));
    sorted.push(high);
    let mut sorted_sigmas: Vec<f64> = (1..=n)
        .map(|i| (sorted[i] - sorted[i - 1]).max(sorted[i + 1] - sorted[i]))
        .collect();
    if !settings.consider_endpoints && sorted.len() >= 4 {
        sorted_sigmas[0] = sorted[2] - sorted[1];
        sorted_sigmas[n - 1] = sorted[n] - sorted[n - 1];
    }
    let max_sigma = high - low;
    let min_sigma = if settings.consider_magic_clip {
        (high - low) / (100.0f64).min(n as f64 + 2.0)
    } else {
        1e-12
    };
    let mut sigmas = vec![0.0; n];
    for (rank, i) in order.iter().enumerate() {
        sigmas[*i] = sorted_sigmas[rank].clamp(min_sigma, max_sigma);
    }
    sigmas
}

fn sample_dim(d: &DimKernels, k: usize, rng: &mut Rng) -> f64 {
    match d {
        DimKernels::Choice { log_probs } => {
            let probs: Vec<f64> = log_probs[k].iter().map(|l| l.exp()).collect();
            rng.weighted(&probs) as f64
        }
        DimKernels::Numeric {
            mus,
            sigmas,
            low,
            high,
            log,
            step,
            value_low,
            value_high,
            ..
        } => {
            let (mu, sigma) = (mus[k], sigmas[k]);
            // Rejection from the untruncated normal: mu lies within the bounds, so at least
            // about half the draws are accepted.
            let mut t = mu.clamp(*low, *high);
            for _ in 0..100 {
                let draw = mu + sigma * rng.normal();
                if draw >= *low && draw <= *high {
                    t = draw;
                    break;
                }
            }
            let v = if *log { t.exp() } else { t };
            match step {
                Some(s) => {
                    (value_low + ((v - value_low) / s).round() * s).clamp(*value_low, *value_high)
                }
                None => v.clamp(*value_low, *value_high),
            }
        }
    }
}

/// Adds each kernel's log density of one coordinate to `acc` (one entry per kernel).
fn add_log_pdf_dim(d: &DimKernels, x: f64, acc: &mut [f64]) {
    match d {
        DimKernels::Choice { log_probs } => {
            for (a, row) in acc.iter_mut().zip(log_probs) {
                *a += row[x as usize];
            }
        }
        DimKernels::Numeric {
            mus,
            sigmas,
            log_norms,
            log,
            step: None,
            ..
        } => {
            let t = if *log { x.ln() } else { x };
            for (k, a) in acc.iter_mut().enumerate() {
                *a += log_normal_pdf((t - mus[k]) / sigmas[k]) - log_norms[k];
            }
        }
        DimKernels::Numeric {
            mus,
            sigmas,
            log_norms,
            log,
            step: Some(s),
            ..
        } => {
            let (mut lo, mut hi) = (x - s / 2.0, x + s / 2.0);
            if *log {
                (lo, hi) = (lo.ln(), hi.ln());
            }
            for (k, a) in acc.iter_mut().enumerate() {
                let (mu, sigma) = (mus[k], sigmas[k]);
                *a += log_normal_mass((lo - mu) / sigma, (hi - mu) / sigma) + sigma.ln()
                    - log_norms[k];
            }
        }
    }
}
