//! Numerics the samplers share: the normal distribution's log-probabilities and
//! log-sum-exp.

use std::f64::consts::{PI, SQRT_2};

/// log of the standard normal density at `z`.
pub fn log_normal_pdf(z: f64) -> f64 {
    -0.5 * z * z - 0.5 * (2.0 * PI).ln()
}

/// log P(a < Z < b) for a standard normal Z, accurate in both tails.
pub fn log_normal_mass(a: f64, b: f64) -> f64 {
    let mass = if a >= 0.0 {
        0.5 * (libm::erfc(a / SQRT_2) - libm::erfc(b / SQRT_2))
    } else if b <= 0.0 {
        0.5 * (libm::erfc(-b / SQRT_2) - libm::erfc(-a / SQRT_2))
    } else {
        1.0 - 0.5 * libm::erfc(-a / SQRT_2) - 0.5 * libm::erfc(b / SQRT_2)
    };
    mass.max(1e-300).ln()
}

/// log(sum(exp(xs))), stable for large magnitudes.
pub fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + xs.map(|x| (x - m).exp()).sum::<f64>().ln()
}
