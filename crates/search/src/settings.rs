//! Katib-style `{name, value}` settings: checked against the names an algorithm knows, and
//! read as numbers or booleans (Katib writes every value as a string).

use crate::SearchError;

/// The settings given to one algorithm, each name checked against the ones it knows.
pub(crate) struct Settings<'a> {
    algorithm: &'a str,
    given: &'a [(String, String)],
}

impl<'a> Settings<'a> {
    /// Checks every given name against `known` (aliases included); an unknown name is an
    /// error that lists the known ones.
    pub fn check(
        algorithm: &'a str,
        given: &'a [(String, String)],
        known: &[&str],
    ) -> Result<Settings<'a>, SearchError> {
        for (i, (name, _)) in given.iter().enumerate() {
            if !known.contains(&name.as_str()) {
                let list = if known.is_empty() {
                    "it takes no settings".to_string()
                } else {
                    format!("known settings: {}", known.join(", "))
                };
                return Err(SearchError::Setting(format!(
                    "unknown setting {name:?} for {algorithm}; {list}"
                )));
            }
            if given[..i].iter().any(|(n, _)| n == name) {
                return Err(SearchError::Setting(format!(
                    "setting {name:?} for {algorithm} is given twice"
                )));
            }
        }
        Ok(Settings { algorithm, given })
    }

    fn raw(&self, names: &[&str]) -> Option<(&'a str, &'a str)> {
        self.given
            .iter()
            .find(|(n, _)| names.contains(&n.as_str()))
            .map(|(n, v)| (n.as_str(), v.trim()))
    }

    fn parsed<T: std::str::FromStr>(
        &self,
        names: &[&str],
        what: &str,
        ok: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, SearchError> {
        let Some((name, raw)) = self.raw(names) else {
            return Ok(None);
        };
        match raw.parse::<T>() {
            Ok(v) if ok(&v) => Ok(Some(v)),
            _ => Err(SearchError::Setting(format!(
                "setting {name} of {}: {raw:?} is not {what}",
                self.algorithm
            ))),
        }
    }

    /// A non-negative integer setting (under any of its alias `names`).
    pub fn count(&self, names: &[&str]) -> Result<Option<u64>, SearchError> {
        self.parsed(names, "a non-negative integer", |_| true)
    }

    /// A positive integer setting.
    pub fn positive(&self, names: &[&str]) -> Result<Option<u64>, SearchError> {
        self.parsed(names, "a positive integer", |v: &u64| *v > 0)
    }

    /// A positive finite number setting.
    pub fn positive_number(&self, names: &[&str]) -> Result<Option<f64>, SearchError> {
        self.parsed(names, "a positive number", |v: &f64| {
            v.is_finite() && *v > 0.0
        })
    }

    /// A non-negative finite number setting.
    pub fn number(&self, names: &[&str]) -> Result<Option<f64>, SearchError> {
        self.parsed(names, "a non-negative number", |v: &f64| {
            v.is_finite() && *v >= 0.0
        })
    }

    /// A boolean setting (`true` / `false`, any case).
    pub fn flag(&self, names: &[&str]) -> Result<Option<bool>, SearchError> {
        let Some((name, raw)) = self.raw(names) else {
            return Ok(None);
        };
        match raw.to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(SearchError::Setting(format!(
                "setting {name} of {}: {raw:?} is not true or false",
                self.algorithm
            ))),
        }
    }
}
