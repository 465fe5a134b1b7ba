//! Hyperparameters in a Kubeflow job's argv. trainctl appends `spec.hyperparameters` to
//! every replica's argv as `--name=value` words, sorted by name; so the `--name=value`
//! words that end every replica's argv alike, in that order, are hyperparameters, and
//! rendering the converted job writes them back word for word.

use std::collections::BTreeMap;

use trainctl_spec::{is_hyperparameter_name, HyperValue};

/// Takes the hyperparameters that end every argv alike off them. The program (the first
/// word) always stays.
pub fn take_shared(mut argvs: Vec<&mut Vec<String>>) -> BTreeMap<String, HyperValue> {
    let Some(first) = argvs.first() else {
        return BTreeMap::new();
    };
    let mut run = trailing(first);
    let shared = (0..=run.len())
        .rev()
        .find(|&k| {
            let tail = &first[first.len() - k..];
            argvs
                .iter()
                .all(|argv| argv.len() > k && argv.ends_with(tail))
        })
        .unwrap_or(0);
    for argv in argvs.iter_mut() {
        let keep = argv.len() - shared;
        argv.truncate(keep);
    }
    run.split_off(run.len() - shared).into_iter().collect()
}

/// The longest run of `--name=value` words at the end of `argv` (after the program) with
/// names in strictly ascending order, as render writes them.
fn trailing(argv: &[String]) -> Vec<(String, HyperValue)> {
    let mut run: Vec<(String, HyperValue)> = Vec::new();
    for word in argv.iter().skip(1).rev() {
        let Some((name, value)) = hyperparameter(word) else {
            break;
        };
        if run.last().is_some_and(|(later, _)| name >= *later) {
            break;
        }
        run.push((name, value));
    }
    run.reverse();
    run
}

/// The name and value of a `--name=value` word whose name is a valid hyperparameter name.
fn hyperparameter(word: &str) -> Option<(String, HyperValue)> {
    let (name, value) = word.strip_prefix("--")?.split_once('=')?;
    is_hyperparameter_name(name).then(|| (name.to_string(), value_of(value)))
}

/// A value as the job file would hold it: a boolean or number when it is written back
/// exactly as given (`1.0` stays a float, `1e-3` a string), else the text.
pub fn value_of(text: &str) -> HyperValue {
    let typed = [
        text.parse().ok().map(HyperValue::Bool),
        text.parse().ok().map(HyperValue::Int),
        text.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(HyperValue::Float),
    ];
    typed
        .into_iter()
        .flatten()
        .find(|v| v.to_string() == text)
        .unwrap_or_else(|| HyperValue::String(text.to_string()))
}
