//! Reading Kubernetes quantities (`500m`, `16Gi`, `1e3`) as numbers, for rules and cloud
//! annotations that need the amount rather than the text.

/// Bytes in a GiB.
pub const GIB: f64 = 1_073_741_824.0;

/// The amount a quantity's text stands for (`500m` is 0.5, `1Ki` 1024), if it is one.
pub use trainctl_spec::quantity_amount as amount;

/// A number as short decimal text: whole numbers without a point, others with at most
/// three decimals (`8`, `0.5`, `14.901`).
pub fn decimal(n: f64) -> String {
    let text = format!("{n:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}
