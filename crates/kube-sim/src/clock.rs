//! The simulated clock: log timestamps, `sinceSeconds`, pod scripts and print schedules
//! read it. It follows the wall clock at a speed the test sets (1 by default), so an hour
//! of a replica's output can be simulated in seconds.

use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

/// A clock running `speed` times as fast as the wall clock.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    /// The wall-clock instant of the last speed change.
    real: Instant,
    /// The simulated time at that instant.
    sim: Timestamp,
    speed: f64,
}

impl Clock {
    /// A clock at the wall-clock time, running at speed 1.
    pub fn new() -> Self {
        Clock {
            real: Instant::now(),
            sim: Timestamp::now(),
            speed: 1.0,
        }
    }

    /// The simulated time now.
    pub fn now(&self) -> Timestamp {
        let elapsed = self.real.elapsed().as_secs_f64() * self.speed;
        self.sim
            .checked_add(SignedDuration::from_secs_f64(elapsed))
            .unwrap_or(self.sim)
    }

    /// From now on, runs `speed` simulated seconds per wall-clock second.
    pub fn set_speed(&mut self, speed: f64) {
        self.sim = self.now();
        self.real = Instant::now();
        self.speed = speed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_clock_runs_ahead_of_the_wall_clock_and_never_back() {
        let mut clock = Clock::new();
        let before = clock.now();
        clock.set_speed(3600.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let after = clock.now();
        assert!(after.duration_since(before) >= SignedDuration::from_secs(60));
        clock.set_speed(1.0);
        assert!(clock.now() >= after);
    }
}
