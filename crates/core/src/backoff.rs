//! Restart delays, and the setting that changes them.

use serde::{Deserialize, Serialize};

/// The environment variable that sets the delay before the first restart, in seconds.
pub const RESTART_BACKOFF_VAR: &str = "TRAINCTL_RESTART_BACKOFF_SECONDS";

/// The longest restart delay, unless the first delay is set longer.
const MAX_DELAY: f64 = 60.0;

/// Restart delays: `base * 2^restarts`, capped at `max` (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// Delay before the first restart.
    pub base: f64,
    /// Longest delay.
    pub max: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: 1.0,
            max: MAX_DELAY,
        }
    }
}

impl Backoff {
    /// The delay before restart number `restarts + 1`.
    pub fn delay(&self, restarts: u32) -> f64 {
        (self.base * 2f64.powi(restarts.min(30) as i32)).min(self.max)
    }

    /// The backoff [`RESTART_BACKOFF_VAR`] sets, read through `lookup` (for example
    /// `|k| std::env::var(k).ok()`): that base, doubling up to 60 s (or the base when it is
    /// longer); the default when unset or not a number of seconds.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Backoff {
        match lookup(RESTART_BACKOFF_VAR)
            .as_deref()
            .and_then(parse_seconds)
        {
            Some(base) => Backoff {
                base,
                max: MAX_DELAY.max(base),
            },
            None => Backoff::default(),
        }
    }
}

/// A duration setting in seconds: a finite, non-negative number, else `None`.
pub fn parse_seconds(text: &str) -> Option<f64> {
    text.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(value: Option<&str>) -> Backoff {
        Backoff::from_lookup(|k| {
            assert_eq!(k, RESTART_BACKOFF_VAR);
            value.map(String::from)
        })
    }

    #[test]
    fn unset_backoff_is_one_second_doubling_to_a_minute() {
        let b = from(None);
        assert_eq!(b, Backoff::default());
        assert_eq!((b.delay(0), b.delay(3), b.delay(40)), (1.0, 8.0, 60.0));
    }

    #[test]
    fn backoff_base_comes_from_the_setting_with_a_sixty_second_cap() {
        assert_eq!(
            from(Some("0.5")),
            Backoff {
                base: 0.5,
                max: 60.0
            }
        );
        assert_eq!(from(Some("0")).delay(5), 0.0);
        assert_eq!(
            from(Some("90")),
            Backoff {
                base: 90.0,
                max: 90.0
            }
        );
    }

    #[test]
    fn bad_backoff_settings_fall_back_to_the_default() {
        for bad in ["", "soon", "-1", "NaN", "inf", " 2"] {
            assert_eq!(from(Some(bad)), Backoff::default(), "{bad:?}");
        }
    }

    #[test]
    fn seconds_settings_are_finite_and_not_negative() {
        assert_eq!(parse_seconds("2.5"), Some(2.5));
        assert_eq!(parse_seconds("0"), Some(0.0));
        assert_eq!(parse_seconds("-0.1"), None);
        assert_eq!(parse_seconds("1e400"), None);
    }
}
