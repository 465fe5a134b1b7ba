//! Resource quantities (`500m`, `2`, `1.5Gi`, `512M`) as numbers, for the scheduler.

use serde_json::Value;

/// The value of a quantity (`1Gi` -> 1073741824, `250m` -> 0.25), or None when malformed.
pub fn parse(quantity: &Value) -> Option<f64> {
    match quantity {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => trainctl_spec::quantity_amount(s),
        _ => None,
    }
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
