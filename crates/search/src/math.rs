//! Numerics the samplers share: the normal distribution's log-probabilities and
//! log-sum-exp.

use std::f64::consts::SQRT_2;

/// log(sqrt(2 pi)).
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// log of the standard normal density at `z`.
pub fn log_normal_pdf(z: f64) -> f64 {
    -0.5 * z * z - LN_SQRT_2PI
}

/// log P(a < Z < b) for a standard normal Z, accurate in both tails.
pub fn log_normal_mass(a: f64, b: f64) -> f64 {
    if a < -9.0 && b > 9.0 {
        return 0.0; // the mass is within 2e-19 of 1
    }
    let mass = if a >= 0.0 {
        0.5 * (libm::erfc(a / SQRT_2) - libm::erfc(b / SQRT_2))
    } else if b <= 0.0 {
        0.5 * (libm::erfc(-b / SQRT_2) - libm::erfc(-a / SQRT_2))
    } else {
        1.0 - 0.5 * libm::erfc(-a / SQRT_2) - 0.5 * libm::erfc(b / SQRT_2)
    };
    mass.max(1e-300).ln()
}

/// log(sum(exp(xs))), stable for large magnitudes. Terms more than 50 below the largest
/// (relative weight under 2e-22) are skipped.
pub fn log_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    let sum: f64 = xs
        .iter()
        .filter(|x| **x > m - 50.0)
        .map(|x| (x - m).exp())
        .sum();
    m + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_normal_mass_matches_the_density_over_a_narrow_bin_and_the_whole_line() {
        assert!(log_normal_mass(-40.0, 40.0).abs() < 1e-12);
        let narrow = log_normal_mass(1.0, 1.0 + 1e-6) - (1e-6f64).ln();
        assert!((narrow - log_normal_pdf(1.0)).abs() < 1e-5, "{narrow}");
        // Far in a tail the mass is tiny but its log stays finite and ordered.
        assert!(log_normal_mass(10.0, 11.0) > log_normal_mass(20.0, 21.0));
        assert!(log_normal_mass(-21.0, -20.0).is_finite());
    }
}
