//! Fair share between users: a user's recent GPU usage is the GPU-seconds of their jobs,
//! each second weighted by `2^(-age / half_life)`, so usage an hour old (with the default
//! half-life) counts half. Among equals, the queue serves the user with the least.

/// The default half-life of recent usage: one hour.
pub const DEFAULT_HALF_LIFE_S: f64 = 3_600.0;

/// A stretch of GPU use: `gpus` held from `from` to `to` (seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// GPUs held.
    pub gpus: u32,
    /// When the use began.
    pub from: f64,
    /// When it ended (now, for a job still running).
    pub to: f64,
}

/// The decayed GPU-seconds of `uses` at `now`: the integral of `gpus * 2^(-(now - s) / h)`
/// over each stretch (the part after `now` does not count).
pub fn decayed_usage(uses: impl IntoIterator<Item = Usage>, now: f64, half_life_s: f64) -> f64 {
    let k = std::f64::consts::LN_2 / half_life_s;
    uses.into_iter()
        .map(|u| {
            let to = u.to.min(now);
            if to <= u.from {
                return 0.0;
            }
            let weight = |s: f64| (-(now - s) * k).exp();
            f64::from(u.gpus) * (weight(to) - weight(u.from)) / k
        })
        .sum()
}

/// A user's decayed usage kept up to date as time goes on, for callers that step through
/// time (a simulator): the same sum as [`decayed_usage`] over the stretches it was told of.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Meter {
    /// The decayed usage at `at`.
    value: f64,
    /// When `value` was last brought up to date.
    at: f64,
    /// GPUs the user holds since `at`.
    gpus: u32,
}

impl Meter {
    /// The usage at `now` (not before the last update), with GPUs held as they were told.
    pub fn value_at(&self, now: f64, half_life_s: f64) -> f64 {
        let k = std::f64::consts::LN_2 / half_life_s;
        let decay = (-(now - self.at).max(0.0) * k).exp();
        self.value * decay + f64::from(self.gpus) * (1.0 - decay) / k
    }

    /// Brings the usage up to `now`, after which the user holds `gpus` GPUs.
    pub fn set_gpus(&mut self, now: f64, gpus: u32, half_life_s: f64) {
        self.value = self.value_at(now, half_life_s);
        self.at = now.max(self.at);
        self.gpus = gpus;
    }

    /// GPUs the user holds.
    pub fn gpus(&self) -> u32 {
        self.gpus
    }
}
