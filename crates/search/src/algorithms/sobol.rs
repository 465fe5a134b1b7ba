//! Sobol sequence search: trial n gets point n of the sequence (Joe and Kuo's direction
//! numbers), digitally shifted by the seed, mapped onto each parameter's domain.

use crate::rng::Rng;
use crate::space::{Assignment, Space};
use crate::SearchError;

const STREAM: u64 = 0x736f_626f; // "sobo"
const BITS: usize = 32;

/// Joe and Kuo's primitive polynomials and initial direction numbers (new-joe-kuo-6.21201)
/// for dimensions 2..: (degree s, coefficients a, m_1..m_s). Dimension 1 is van der Corput.
const DIRECTIONS: &[(u32, u32, &[u32])] = &[
    (1, 0, &[1]),
    (2, 1, &[1, 3]),
    (3, 1, &[1, 3, 1]),
    (3, 2, &[1, 1, 1]),
    (4, 1, &[1, 1, 3, 3]),
    (4, 4, &[1, 3, 5, 13]),
    (5, 2, &[1, 1, 5, 5, 17]),
    (5, 4, &[1, 1, 5, 5, 5]),
    (5, 7, &[1, 1, 7, 11, 19]),
    (5, 11, &[1, 1, 5, 1, 1]),
    (5, 13, &[1, 1, 1, 3, 11]),
    (5, 14, &[1, 3, 5, 5, 31]),
    (6, 1, &[1, 3, 3, 9, 7, 49]),
    (6, 13, &[1, 1, 1, 15, 21, 21]),
    (6, 16, &[1, 3, 1, 13, 27, 49]),
];

/// The most parameters a Sobol search takes.
pub const MAX_DIMS: usize = DIRECTIONS.len() + 1;

/// Refuses spaces with more parameters than there are direction numbers.
pub fn check(space: &Space) -> Result<(), SearchError> {
    if space.params().len() > MAX_DIMS {
        return Err(SearchError::Space(format!(
            "sobol searches at most {MAX_DIMS} parameters; this space has {}",
            space.params().len()
        )));
    }
    Ok(())
}

/// The direction numbers of dimension `dim` (0-based), scaled to 32 bits.
fn directions(dim: usize) -> [u32; BITS] {
    let mut v = [0u32; BITS];
    if dim == 0 {
        for (k, slot) in v.iter_mut().enumerate() {
            *slot = 1 << (BITS - 1 - k);
        }
        return v;
    }
    let (s, a, m) = DIRECTIONS[dim - 1];
    let s = s as usize;
    for k in 0..BITS {
        v[k] = if k < s {
            m[k] << (BITS - 1 - k)
        } else {
            let mut x = v[k - s] ^ (v[k - s] >> s);
            for i in 1..s {
                if (a >> (s - 1 - i)) & 1 == 1 {
                    x ^= v[k - i];
                }
            }
            x
        };
    }
    v
}

/// Point `index` of the unshifted sequence as 32-bit integers (Gray-code order, as usual).
pub fn point_bits(index: u64, dims: usize) -> Vec<u32> {
    let gray = index ^ (index >> 1);
    (0..dims)
        .map(|d| {
            let v = directions(d);
            (0..BITS)
                .filter(|k| (gray >> k) & 1 == 1)
                .fold(0u32, |acc, k| acc ^ v[k])
        })
        .collect()
}

/// Trial `number`'s assignment: sequence point `number`, XOR-shifted by the seed's stream.
pub fn suggest(space: &Space, seed: u64, number: u64) -> Assignment {
    let mut rng = Rng::from_words(&[seed, STREAM]);
    let bits = point_bits(number, space.params().len());
    space
        .params()
        .iter()
        .zip(bits)
        .map(|(p, b)| {
            let shifted = b ^ (rng.next_u64() >> 32) as u32;
            (
                p.name.clone(),
                p.from_unit(shifted as f64 / 4_294_967_296.0),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dimension_puts_one_of_the_first_2_pow_k_points_in_each_dyadic_interval() {
        for k in 1..=8u32 {
            let n = 1u64 << k;
            for d in 0..MAX_DIMS {
                let mut seen = vec![false; n as usize];
                for i in 0..n {
                    let cell = (point_bits(i, MAX_DIMS)[d] >> (32 - k)) as usize;
                    assert!(!seen[cell], "dim {d}, 2^{k} points: cell {cell} hit twice");
                    seen[cell] = true;
                }
            }
        }
    }

    #[test]
    fn the_first_two_dimensions_form_a_0_m_2_net() {
        // Every 2^a x 2^b box with a + b = m holds exactly one of the first 2^m points.
        let m = 6u32;
        for a in 0..=m {
            let b = m - a;
            let mut seen = vec![false; 1 << m];
            for i in 0..(1u64 << m) {
                let p = point_bits(i, 2);
                let cell = (((p[0] as u64) >> (32 - a)) << b) | ((p[1] as u64) >> (32 - b));
                assert!(!seen[cell as usize], "box {a}x{b} hit twice");
                seen[cell as usize] = true;
            }
        }
    }
}
