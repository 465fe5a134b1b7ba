//! Grid search: the Cartesian product of every parameter's values, each point once, in order
//! (the last parameter varies fastest).

use std::collections::HashSet;

use super::Suggestion;
use crate::history::Trial;
use crate::space::{Assignment, Space, Value};
use crate::SearchError;

/// Every parameter's grid values (errors for a `double` without `step`).
pub fn points(space: &Space) -> Result<Vec<Vec<Value>>, SearchError> {
    space.params().iter().map(|p| p.grid_values()).collect()
}

/// The first grid point no trial in `history` (in any state) has used.
pub fn suggest(space: &Space, history: &[Trial]) -> Result<Suggestion, SearchError> {
    let axes = points(space)?;
    let used: HashSet<String> = history
        .iter()
        .filter(|t| space.contains(&t.assignment))
        .map(|t| key(&t.assignment))
        .collect();
    let mut idx = vec![0usize; axes.len()];
    loop {
        let point: Assignment = space
            .params()
            .iter()
            .zip(&axes)
            .zip(&idx)
            .map(|((p, axis), i)| (p.name.clone(), axis[*i].clone()))
            .collect();
        if !used.contains(&key(&point)) {
            return Ok(Suggestion::Assign(point));
        }
        // Advance the mixed-radix counter, last axis fastest.
        let mut d = axes.len();
        loop {
            if d == 0 {
                return Ok(Suggestion::Exhausted);
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < axes[d].len() {
                break;
            }
            idx[d] = 0;
        }
    }
}

fn key(a: &Assignment) -> String {
    a.iter()
        .map(|(_, v)| match v {
            Value::Float(f) => format!("{:e}", f),
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join("\u{1f}")
}
