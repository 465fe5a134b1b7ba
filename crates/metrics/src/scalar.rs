//! The scalar in a summary value, whichever way it was encoded: `simple_value` (TF1,
//! tensorboardX, torch by default), or a one-element numeric tensor (TF2 `tf.summary.scalar`
//! puts it in `tensor_content`; torch's `new_style` and others use `float_val`, `double_val`,
//! `half_val`, ...).

use half::{bf16, f16};

use crate::proto::{
    summary_value::Value, SummaryValue, TensorProto, DT_BFLOAT16, DT_DOUBLE, DT_FLOAT, DT_HALF,
    DT_INT32, DT_INT64,
};

/// The scalar a summary value holds, or `None` for anything else (images, histograms, text,
/// tensors of more than one element).
pub fn scalar_value(value: &SummaryValue) -> Option<f64> {
    match value.value.as_ref()? {
        Value::SimpleValue(v) => Some(f64::from(*v)),
        Value::Tensor(t) => tensor_scalar(t),
    }
}

fn tensor_scalar(t: &TensorProto) -> Option<f64> {
    let elements: i64 = t
        .tensor_shape
        .as_ref()
        .map_or(1, |s| s.dim.iter().map(|d| d.size).product());
    if elements != 1 {
        return None;
    }
    let content = t.tensor_content.as_slice();
    match t.dtype {
        DT_FLOAT => from_content(content, f32::from_le_bytes)
            .map(f64::from)
            .or_else(|| t.float_val.first().map(|v| f64::from(*v))),
        DT_DOUBLE => {
            from_content(content, f64::from_le_bytes).or_else(|| t.double_val.first().copied())
        }
        DT_HALF => sixteen_bits(t).map(|b| f16::from_bits(b).to_f64()),
        DT_BFLOAT16 => sixteen_bits(t).map(|b| bf16::from_bits(b).to_f64()),
        DT_INT32 => from_content(content, i32::from_le_bytes)
            .or_else(|| t.int_val.first().copied())
            .map(f64::from),
        DT_INT64 => from_content(content, i64::from_le_bytes)
            .or_else(|| t.int64_val.first().copied())
            .map(|v| v as f64),
        _ => None,
    }
}

/// A 16-bit float's bits, from `tensor_content` or from `half_val`.
fn sixteen_bits(t: &TensorProto) -> Option<u16> {
    from_content(&t.tensor_content, u16::from_le_bytes)
        .or_else(|| t.half_val.first().map(|v| *v as u16))
}

/// Decodes `tensor_content` when it holds exactly one value of `N` bytes.
fn from_content<const N: usize, T>(content: &[u8], decode: fn([u8; N]) -> T) -> Option<T> {
    content.try_into().ok().map(decode)
}
