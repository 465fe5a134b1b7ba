//! CMA-ES (Hansen's active (mu/mu_w, lambda) strategy, as in the `cmaes` library Optuna uses) over the numeric parameters in the unit cube,
//! log-scaled where the parameter is, with mirrored sampling (Brockhoff et al., 2010): the
//! second trial of each pair in a generation steps from the mean by the negative of the
//! first's step. The state is rebuilt by replaying the completed trials in number order,
//! `lambda` at a time, so a suggestion depends only on the seed and the history. Categorical
//! and discrete parameters are drawn at random, as Optuna does.

use super::linalg::{identity, symmetric_eigen, Matrix};
use super::CmaesSettings;
use crate::history::{observations, Direction, Trial};
use crate::rng::Rng;
use crate::space::{Assignment, Coord, Space};

const STREAM: u64 = 0x636d_6165; // "cmae"

struct Cma {
    n: usize,
    lambda: usize,
    weights: Vec<f64>,
    mu_eff: f64,
    c_sigma: f64,
    d_sigma: f64,
    c_c: f64,
    c_1: f64,
    c_mu: f64,
    chi_n: f64,
    mean: Vec<f64>,
    sigma: f64,
    cov: Matrix,
    p_sigma: Vec<f64>,
    p_c: Vec<f64>,
    /// Eigenvectors (columns) and square roots of the eigenvalues of `cov`.
    b: Matrix,
    d: Vec<f64>,
    generation: u32,
}

impl Cma {
    /// The initial state: mean at the cube's centre, step size `sigma0` (1/6), and the
    /// weights of active CMA-ES (Hansen 2016): positive for the better half, negative for
    /// the worse half.
    fn new(n: usize, settings: &CmaesSettings) -> Cma {
        let nf = n as f64;
        let lambda = settings
            .popsize
            .unwrap_or(4 + (3.0 * nf.ln()).floor() as usize);
        let mu = lambda / 2;
        let raw: Vec<f64> = (0..lambda)
            .map(|i| ((lambda as f64 + 1.0) / 2.0).ln() - ((i + 1) as f64).ln())
            .collect();
        let effective =
            |w: &[f64]| w.iter().sum::<f64>().powi(2) / w.iter().map(|v| v * v).sum::<f64>();
        let mu_eff = effective(&raw[..mu]);
        let mu_eff_minus = effective(&raw[mu..]);
        let c_sigma = (mu_eff + 2.0) / (nf + mu_eff + 5.0);
        let c_1 = 2.0 / ((nf + 1.3).powi(2) + mu_eff);
        let c_mu = (1.0 - c_1 - 1e-8)
            .min(2.0 * (mu_eff - 2.0 + 1.0 / mu_eff) / ((nf + 2.0).powi(2) + mu_eff));
        let min_alpha = (1.0 + c_1 / c_mu)
            .min(1.0 + 2.0 * mu_eff_minus / (mu_eff + 2.0))
            .min((1.0 - c_1 - c_mu) / (nf * c_mu));
        let positive: f64 = raw.iter().filter(|w| **w > 0.0).sum();
        let negative: f64 = -raw.iter().filter(|w| **w < 0.0).sum::<f64>();
        let weights = raw
            .iter()
            .map(|w| {
                if *w >= 0.0 {
                    w / positive
                } else {
                    min_alpha * w / negative
                }
            })
            .collect();
        Cma {
            n,
            lambda,
            mu_eff,
            c_sigma,
            d_sigma: 1.0 + 2.0 * (((mu_eff - 1.0) / (nf + 1.0)).sqrt() - 1.0).max(0.0) + c_sigma,
            c_c: (4.0 + mu_eff / nf) / (nf + 4.0 + 2.0 * mu_eff / nf),
            c_1,
            c_mu,
            chi_n: nf.sqrt() * (1.0 - 1.0 / (4.0 * nf) + 1.0 / (21.0 * nf * nf)),
            weights,
            mean: vec![0.5; n],
            sigma: settings.sigma0.unwrap_or(1.0 / 6.0),
            cov: identity(n),
            p_sigma: vec![0.0; n],
            p_c: vec![0.0; n],
            b: identity(n),
            d: vec![1.0; n],
            generation: 0,
        }
    }

    /// C^(-1/2) y = B D^-1 B^T y.
    fn inverse_sqrt_times(&self, y: &[f64]) -> Vec<f64> {
        let n = self.n;
        let bt_y: Vec<f64> = (0..n)
            .map(|j| (0..n).map(|i| self.b[i][j] * y[i]).sum::<f64>() / self.d[j])
            .collect();
        (0..n)
            .map(|i| (0..n).map(|j| self.b[i][j] * bt_y[j]).sum())
            .collect()
    }

    /// The point `mean + sigma * B D z`.
    fn point(&self, z: &[f64]) -> Vec<f64> {
        (0..self.n)
            .map(|i| {
                let step: f64 = (0..self.n).map(|j| self.b[i][j] * self.d[j] * z[j]).sum();
                self.mean[i] + self.sigma * step
            })
            .collect()
    }

    /// A step `z` (standard normal) whose point lies in the unit cube, redrawn up to 100 times;
    /// `None` when every draw fell outside.
    fn feasible_step(&self, rng: &mut Rng) -> Option<Vec<f64>> {
        (0..100).find_map(|_| {
            let z: Vec<f64> = (0..self.n).map(|_| rng.normal()).collect();
            in_cube(&self.point(&z)).then_some(z)
        })
    }

    /// A point drawn from the current distribution: the mirror of `partner`'s step when that
    /// lies in the unit cube, else a fresh feasible draw (clipped into the cube after 100 tries).
    fn ask(&self, rng: &mut Rng, partner: Option<Vec<f64>>) -> Vec<f64> {
        if let Some(z) = partner {
            let mirrored = self.point(&z.iter().map(|v| -v).collect::<Vec<_>>());
            if in_cube(&mirrored) {
                return mirrored;
            }
        }
        match self.feasible_step(rng) {
            Some(z) => self.point(&z),
            None => {
                let z: Vec<f64> = (0..self.n).map(|_| rng.normal()).collect();
                self.point(&z).iter().map(|v| v.clamp(0.0, 1.0)).collect()
            }
        }
    }

    /// One generation's update from its points and losses.
    fn tell(&mut self, mut batch: Vec<(Vec<f64>, f64)>) {
        let n = self.n;
        batch.sort_by(|a, b| a.1.total_cmp(&b.1));
        let ys: Vec<Vec<f64>> = batch
            .iter()
            .map(|(x, _)| (0..n).map(|i| (x[i] - self.mean[i]) / self.sigma).collect())
            .collect();
        // The mean moves towards the better half (the positive weights).
        let y_w: Vec<f64> = (0..n)
            .map(|i| {
                ys.iter()
                    .zip(&self.weights)
                    .filter(|(_, w)| **w > 0.0)
                    .map(|(y, w)| w * y[i])
                    .sum()
            })
            .collect();
        for (m, y) in self.mean.iter_mut().zip(&y_w) {
            *m += self.sigma * y;
        }
        let cs = self.c_sigma;
        let sigma_path_gain = (cs * (2.0 - cs) * self.mu_eff).sqrt();
        let whitened = self.inverse_sqrt_times(&y_w);
        for (p, y) in self.p_sigma.iter_mut().zip(whitened) {
            *p = (1.0 - cs) * *p + sigma_path_gain * y;
        }
        self.generation += 1;
        let ps_norm = self.p_sigma.iter().map(|v| v * v).sum::<f64>().sqrt();
        let h_sigma = ps_norm / (1.0 - (1.0 - cs).powi(2 * (self.generation as i32 + 1))).sqrt()
            < (1.4 + 2.0 / (n as f64 + 1.0)) * self.chi_n;
        let h = if h_sigma { 1.0 } else { 0.0 };
        let cc = self.c_c;
        let cov_path_gain = h * (cc * (2.0 - cc) * self.mu_eff).sqrt();
        for (p, y) in self.p_c.iter_mut().zip(&y_w) {
            *p = (1.0 - cc) * *p + cov_path_gain * y;
        }
        // Negative weights are rescaled by the Mahalanobis length of their step.
        let w_io: Vec<f64> = ys
            .iter()
            .zip(&self.weights)
            .map(|(y, w)| {
                if *w >= 0.0 {
                    *w
                } else {
                    let z = self.inverse_sqrt_times(y);
                    w * n as f64 / (z.iter().map(|v| v * v).sum::<f64>() + 1e-8)
                }
            })
            .collect();
        let weight_sum: f64 = self.weights.iter().sum();
        let decay =
            1.0 + self.c_1 * (1.0 - h) * cc * (2.0 - cc) - self.c_1 - self.c_mu * weight_sum;
        for i in 0..n {
            for j in 0..n {
                let rank_mu: f64 = ys.iter().zip(&w_io).map(|(y, w)| w * y[i] * y[j]).sum();
                self.cov[i][j] = decay * self.cov[i][j]
                    + self.c_1 * self.p_c[i] * self.p_c[j]
                    + self.c_mu * rank_mu;
            }
        }
        self.sigma *= ((cs / self.d_sigma) * (ps_norm / self.chi_n - 1.0)).exp();
        self.sigma = self.sigma.clamp(1e-12, 1e3);
        let (values, vectors) = symmetric_eigen(&self.cov);
        self.d = values.iter().map(|v| v.max(1e-20).sqrt()).collect();
        self.b = vectors;
    }
}

fn in_cube(x: &[f64]) -> bool {
    x.iter().all(|v| (0.0..=1.0).contains(v))
}

/// Trial `number`'s random stream, past the draws for its non-numeric parameters.
fn trial_stream(seed: u64, number: u64, params: usize) -> (Rng, Vec<f64>) {
    let mut rng = Rng::from_words(&[seed, number, STREAM]);
    let unit = (0..params).map(|_| rng.uniform()).collect();
    (rng, unit)
}

/// Trial `number`'s CMA-ES assignment.
pub fn suggest(
    space: &Space,
    direction: Direction,
    history: &[Trial],
    seed: u64,
    number: u64,
    settings: &CmaesSettings,
) -> Assignment {
    let params = space.params();
    let numeric: Vec<usize> = (0..params.len())
        .filter(|i| matches!(params[*i].coord(), Coord::Numeric { .. }))
        .collect();
    let (mut rng, mut unit) = trial_stream(seed, number, params.len());
    if !numeric.is_empty() {
        let mut cma = Cma::new(numeric.len(), settings);
        let completed: Vec<(Vec<f64>, f64)> = observations(space, direction, history)
            .into_iter()
            .filter(|o| o.pruned_at.is_none() && o.loss.is_finite())
            .map(|o| {
                (
                    numeric
                        .iter()
                        .map(|i| params[*i].to_unit(o.xs[*i]))
                        .collect(),
                    o.loss,
                )
            })
            .collect();
        for batch in completed.chunks_exact(cma.lambda) {
            cma.tell(batch.to_vec());
        }
        // Trials pair up by their place in a generation (0-1, 2-3, ...): the second of a pair
        // mirrors the step the first drew, recomputed from the first's stream.
        let partner = (number % cma.lambda as u64 % 2 == 1)
            .then(|| cma.feasible_step(&mut trial_stream(seed, number - 1, params.len()).0))
            .flatten();
        for (i, u) in numeric.iter().zip(cma.ask(&mut rng, partner)) {
            unit[*i] = u;
        }
    }
    params
        .iter()
        .zip(unit)
        .map(|(p, u)| (p.name.clone(), p.from_unit(u.min(1.0 - 1e-12))))
        .collect()
}
