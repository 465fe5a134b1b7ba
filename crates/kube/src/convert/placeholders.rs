//! Katib's `${trialParameters.<name>}` placeholders in a trial spec. trainctl hands a trial's
//! values to the program as `--name=value` words (and `HP_NAME` variables), so a placeholder
//! converts where it stands as a whole argv word, `--flag=${trialParameters.x}` or the pair
//! `--flag ${trialParameters.x}`: the word leaves the argv and `flag` becomes the name the
//! search parameter goes by. A placeholder anywhere else is an error that says where.

use std::collections::BTreeMap;

use serde_json::Value;
use trainctl_spec::is_hyperparameter_name;

use super::ConvertError;

/// What starts a placeholder.
const OPEN: &str = "${trialParameters.";

/// Takes every placeholder out of the argv words of `spec` (the arrays under `command` and
/// `args`); returns each trial parameter's flag. `at` is the path of `spec` in messages.
pub fn take(spec: &mut Value, at: &str) -> Result<BTreeMap<String, String>, ConvertError> {
    let mut flags = BTreeMap::new();
    walk(spec, at, false, &mut flags)?;
    Ok(flags)
}

fn walk(
    v: &mut Value,
    at: &str,
    argv: bool,
    flags: &mut BTreeMap<String, String>,
) -> Result<(), ConvertError> {
    match v {
        Value::Array(words) if argv => take_words(words, at, flags),
        Value::Array(items) => items
            .iter_mut()
            .enumerate()
            .try_for_each(|(i, item)| walk(item, &format!("{at}[{i}]"), false, flags)),
        Value::Object(map) => map.iter_mut().try_for_each(|(k, item)| {
            let argv = k == "command" || k == "args";
            walk(item, &format!("{at}.{k}"), argv, flags)
        }),
        Value::String(s) if s.contains(OPEN) => Err(misplaced(at, s)),
        _ => Ok(()),
    }
}

/// Removes the placeholder words of one argv.
fn take_words(
    words: &mut Vec<Value>,
    at: &str,
    flags: &mut BTreeMap<String, String>,
) -> Result<(), ConvertError> {
    let text = |w: &Value| w.as_str().unwrap_or_default().to_string();
    let mut kept = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let word = text(&words[i]);
        let joined = word
            .strip_prefix("--")
            .and_then(|w| w.split_once('='))
            .and_then(|(flag, value)| Some((flag, placeholder(value)?)));
        let paired = words
            .get(i + 1)
            .and_then(|next| placeholder(&text(next)).map(str::to_string))
            .and_then(|name| Some((word.strip_prefix("--")?, name)));
        let (flag, name, used) = match (joined, paired) {
            (Some((flag, name)), _) => (flag.to_string(), name.to_string(), 1),
            (None, Some((flag, name))) => (flag.to_string(), name, 2),
            (None, None) if word.contains(OPEN) => {
                return Err(misplaced(&format!("{at}[{i}]"), &word))
            }
            (None, None) => {
                kept.push(words[i].clone());
                i += 1;
                continue;
            }
        };
        if !is_hyperparameter_name(&flag) {
            return Err(ConvertError::Unsupported(format!(
                "{at}[{i}]: {flag:?} cannot name a hyperparameter (letters, digits, '-' and '_', \
                 starting with a letter), so the placeholder of {name:?} has no --name=value form"
            )));
        }
        if let Some(other) = flags.get(&name).filter(|f| **f != flag) {
            return Err(ConvertError::Unsupported(format!(
                "{at}[{i}]: trial parameter {name:?} is passed as --{flag} here and as --{other} \
                 elsewhere; a trial's value reaches every replica under one name"
            )));
        }
        flags.insert(name, flag);
        i += used;
    }
    *words = kept;
    Ok(())
}

/// The trial parameter's name when `text` is exactly one placeholder.
fn placeholder(text: &str) -> Option<&str> {
    text.strip_prefix(OPEN)?
        .strip_suffix('}')
        .filter(|name| !name.is_empty() && !name.contains(['{', '}', '$']))
}

fn misplaced(at: &str, text: &str) -> ConvertError {
    ConvertError::Unsupported(format!(
        "{at}: {text:?}: a trial's values reach the program as --name=value argv words and \
         HP_NAME variables only; write the placeholder as a whole argv word, \
         --name=${{trialParameters.x}}"
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn joined_and_paired_placeholders_leave_the_argv_and_name_their_flags() {
        let mut spec = json!({"containers": [{"command": ["python3", "train.py",
            "--lr=${trialParameters.learningRate}", "--epochs=2", "--momentum",
            "${trialParameters.momentum}"]}]});
        let flags = take(&mut spec, "trialSpec").unwrap();
        assert_eq!(
            spec["containers"][0]["command"],
            json!(["python3", "train.py", "--epochs=2"])
        );
        assert_eq!(flags["learningRate"], "lr");
        assert_eq!(flags["momentum"], "momentum");
    }

    #[test]
    fn a_placeholder_inside_a_shell_line_or_an_env_value_is_an_error_with_its_path() {
        let mut shell = json!({"args": ["python train.py --lr=${trialParameters.lr}"]});
        let e = take(&mut shell, "t").unwrap_err().to_string();
        assert!(
            e.starts_with("t.args[0]: ") && e.contains("whole argv word"),
            "{e}"
        );
        let mut env = json!({"env": [{"name": "LR", "value": "${trialParameters.lr}"}]});
        let e = take(&mut env, "t").unwrap_err().to_string();
        assert!(e.starts_with("t.env[0].value: "), "{e}");
    }

    #[test]
    fn one_trial_parameter_under_two_flags_is_an_error() {
        let mut spec = json!({"a": {"args": ["--lr=${trialParameters.x}"]},
                              "b": {"args": ["--rate=${trialParameters.x}"]}});
        let e = take(&mut spec, "t").unwrap_err().to_string();
        assert!(e.contains("--rate here and as --lr elsewhere"), "{e}");
    }
}
