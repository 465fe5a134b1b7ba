//! Kubernetes resource quantities (`500m`, `2Gi`, `1.5`), kept as written.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// A Kubernetes quantity such as `1`, `500m` or `2Gi`. A bare YAML number is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Quantity(pub String);

/// Binary and decimal suffixes and the factor each stands for.
const FACTORS: [(&str, f64); 15] = [
    ("Ki", 1024.0),
    ("Mi", 1_048_576.0),
    ("Gi", 1_073_741_824.0),
    ("Ti", 1_099_511_627_776.0),
    ("Pi", 1_125_899_906_842_624.0),
    ("Ei", 1_152_921_504_606_846_976.0),
    ("n", 1e-9),
    ("u", 1e-6),
    ("m", 1e-3),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
    ("E", 1e18),
];

/// The amount a quantity's text stands for (`500m` is 0.5, `1Ki` 1024, `1e3` 1000), if it
/// is one.
pub fn quantity_amount(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, factor) = FACTORS
        .iter()
        .find_map(|(suffix, factor)| text.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((text, 1.0));
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(|n| n * factor)
}

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
        number_ok && (suffix.is_empty() || FACTORS.iter().any(|(f, _)| *f == suffix) || exponent_ok)
    }

    /// The amount this quantity stands for, such as 0.5 for `500m`.
    pub fn amount(&self) -> Option<f64> {
        quantity_amount(&self.0)
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

    #[test]
    fn amounts_apply_the_suffix() {
        assert_eq!(Quantity("500m".into()).amount(), Some(0.5));
        assert_eq!(quantity_amount("2Gi"), Some(2.0 * 1024f64.powi(3)));
        assert_eq!(quantity_amount("1e3"), Some(1000.0));
        assert_eq!(quantity_amount(" 4 "), Some(4.0));
        assert_eq!(quantity_amount("lots"), None);
    }
}
