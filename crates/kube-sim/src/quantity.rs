//! Resource quantities (`500m`, `2`, `1.5Gi`, `512M`) as numbers, for the scheduler.

use serde_json::Value;

/// The value of a quantity (`1Gi` -> 1073741824, `250m` -> 0.25), or None when malformed.
pub fn parse(quantity: &Value) -> Option<f64> {
    let text = match quantity {
        Value::Number(n) => return n.as_f64(),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let suffixes: [(&str, f64); 15] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
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
    let (number, factor) = suffixes
        .iter()
        .find_map(|(suffix, factor)| text.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((text, 1.0));
    number.parse::<f64>().ok().map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn suffixes_scale_the_number() {
        assert_eq!(parse(&json!("500m")), Some(0.5));
        assert_eq!(parse(&json!("2Gi")), Some(2.0 * 1024f64.powi(3)));
        assert_eq!(parse(&json!("1e3")), Some(1000.0));
        assert_eq!(parse(&json!(4)), Some(4.0));
        assert_eq!(parse(&json!("lots")), None);
    }
}
