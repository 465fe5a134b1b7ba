//! Kubernetes resource quantities (`500m`, `2Gi`, `1.5`), kept as written.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// A Kubernetes quantity such as `1`, `500m` or `2Gi`. A bare YAML number is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Quantity(pub String);

const SUFFIXES: [&str; 14] = [
    "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
];

impl Quantity {
    /// True when the text follows Kubernetes quantity syntax (sign, decimal, suffix or exponent).
    pub fn is_valid(&self) -> bool {
        let s = self.0.trim_start_matches(['+', '-']);
        let digits_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, suffix) = s.split_at(digits_end);
        let number_ok = !number.is_empty() && number != "." && number.matches('.').count() <= 1;
        let exponent_ok = suffix.strip_prefix(['e', 'E']).is_some_and(|e| {
            let e = e.trim_start_matches(['+', '-']);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        });
        number_ok && (SUFFIXES.contains(&suffix) || exponent_ok)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(i64),
            Float(f64),
        }
        let text = match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected a quantity such as 1, 500m or 2Gi"))?
        {
            Raw::Text(s) => s,
            Raw::Int(i) => i.to_string(),
            Raw::Float(x) => x.to_string(),
        };
        Ok(Quantity(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kubernetes_forms_and_rejects_others() {
        for ok in ["1", "500m", "0.5", "2Gi", "100M", "1e3", "+1", "1.5Ki"] {
            assert!(Quantity(ok.into()).is_valid(), "{ok}");
        }
        for bad in ["", "abc", "2GB", "1..2", "m", "1e", "2 Gi"] {
            assert!(!Quantity(bad.into()).is_valid(), "{bad}");
        }
    }
}
