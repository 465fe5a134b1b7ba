//! Random search: every parameter drawn independently, uniform (or log-uniform) over its domain.

use crate::rng::Rng;
use crate::space::{Assignment, Space};

const STREAM: u64 = 0x7261_6e64; // "rand"

/// Trial `number`'s random assignment.
pub fn suggest(space: &Space, seed: u64, number: u64) -> Assignment {
    let mut rng = Rng::from_words(&[seed, number, STREAM]);
    space
        .params()
        .iter()
        .map(|p| (p.name.clone(), p.from_unit(rng.uniform())))
        .collect()
}
