//! The benchmark problems, written identically in bench/search_quality.py (for Optuna).

use std::f64::consts::{E, PI, TAU};

/// A black-box function to minimize over a box.
pub struct Problem {
    /// Lower and upper bound per dimension.
    pub bounds: &'static [(f64, f64)],
    /// The function.
    pub f: fn(&[f64]) -> f64,
    /// Its global minimum.
    pub minimum: f64,
}

/// Branin, Hartmann6, Rosenbrock (5-D) or Ackley (5-D).
pub fn by_name(name: &str) -> Option<Problem> {
    Some(match name {
        "branin" => Problem {
            bounds: &[(-5.0, 10.0), (0.0, 15.0)],
            f: branin,
            minimum: 0.397_887_357_729_738_2,
        },
        "hartmann6" => Problem {
            bounds: &[(0.0, 1.0); 6],
            f: hartmann6,
            minimum: HARTMANN6_MIN,
        },
        "rosenbrock5" => Problem {
            bounds: &[(-5.0, 10.0); 5],
            f: rosenbrock,
            minimum: 0.0,
        },
        "ackley5" => Problem {
            bounds: &[(-32.768, 32.768); 5],
            f: ackley,
            minimum: 0.0,
        },
        _ => return None,
    })
}

fn branin(x: &[f64]) -> f64 {
    let b = 5.1 / (4.0 * PI * PI);
    let c = 5.0 / PI;
    let t = 1.0 / (8.0 * PI);
    (x[1] - b * x[0] * x[0] + c * x[0] - 6.0).powi(2) + 10.0 * (1.0 - t) * x[0].cos() + 10.0
}

/// Hartmann6's global minimum.
pub const HARTMANN6_MIN: f64 = -3.322_368_011_415_515;

/// The six-dimensional Hartmann function on [0, 1]^6.
pub fn hartmann6(x: &[f64]) -> f64 {
    const ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
    const A: [[f64; 6]; 4] = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    const P: [[f64; 6]; 4] = [
        [1312.0, 1696.0, 5569.0, 124.0, 8283.0, 5886.0],
        [2329.0, 4135.0, 8307.0, 3736.0, 1004.0, 9991.0],
        [2348.0, 1451.0, 3522.0, 2883.0, 3047.0, 6650.0],
        [4047.0, 8828.0, 8732.0, 5743.0, 1091.0, 381.0],
    ];
    -(0..4)
        .map(|i| {
            let inner: f64 = (0..6)
                .map(|j| A[i][j] * (x[j] - P[i][j] * 1e-4).powi(2))
                .sum();
            ALPHA[i] * (-inner).exp()
        })
        .sum::<f64>()
}

fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2)
        .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
        .sum()
}

fn ackley(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let squares = x.iter().map(|v| v * v).sum::<f64>() / n;
    let cosines = x.iter().map(|v| (TAU * v).cos()).sum::<f64>() / n;
    -20.0 * (-0.2 * squares.sqrt()).exp() - cosines.exp() + 20.0 + E
}

/// Epochs of a full trial in the multi-fidelity problem.
pub const EPOCHS: u64 = 27;

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(words: [u64; 4]) -> f64 {
    let h = words.iter().fold(0u64, |h, w| mix(h ^ w));
    ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// The multi-fidelity learning curve: the loss at `epoch` of a configuration whose final
/// (epoch 27) loss is Hartmann6; it starts `gap` higher and converges at a rate set by x[0]
/// (slow learners look bad early), with Gaussian noise (sd 0.02) drawn from (seed, trial,
/// epoch).
pub fn curve(x: &[f64], seed: u64, trial: u64, epoch: u64) -> f64 {
    let rate = 0.05 + 0.3 * x[0];
    let gap = 1.0 + 2.0 * x[5];
    let last = EPOCHS as f64;
    let progress =
        ((-rate * epoch as f64).exp() - (-rate * last).exp()) / (1.0 - (-rate * last).exp());
    let (u1, u2) = (unit([seed, trial, epoch, 1]), unit([seed, trial, epoch, 2]));
    let noise = (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos();
    hartmann6(x) + gap * progress + 0.02 * noise
}
