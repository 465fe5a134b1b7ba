//! The doctor's smoke test on one GPU: a Python program that multiplies matrices through
//! whichever of PyTorch, TensorFlow or CuPy is installed and prints the achieved TFLOP/s
//! (or, with none of them, what `nvidia-smi -L` says), and the parser of its result line.

use serde::Serialize;

/// The program each smoke job runs (`python3 -c` or as a file). Its last line starts with
/// `smoke `, then `key=value` pairs.
pub const SCRIPT: &str = r#"
import os, shlex, subprocess, time

def report(**kv):
    print("smoke " + " ".join(f"{k}={shlex.quote(str(v))}" for k, v in kv.items()), flush=True)

def rate(n, iters, seconds):
    return round(2.0 * n ** 3 * iters / seconds / 1e12, 2)

visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
try:
    import torch
    if not torch.cuda.is_available():
        raise ImportError("torch without CUDA")
    dev = torch.device("cuda:0")
    result = {}
    for dtype, name in ((torch.float32, "tflops_fp32"), (torch.float16, "tflops_fp16")):
        n, iters = 8192, 20
        a = torch.randn(n, n, device=dev, dtype=dtype)
        b = torch.randn(n, n, device=dev, dtype=dtype)
        (a @ b).sum().item()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iters):
            c = a @ b
        torch.cuda.synchronize()
        result[name] = rate(n, iters, time.perf_counter() - start)
    report(backend="torch", gpu=visible, device=torch.cuda.get_device_name(0), **result)
except ImportError:
    try:
        import tensorflow as tf
        if not tf.config.list_physical_devices("GPU"):
            raise ImportError("tensorflow without GPU")
        n, iters = 8192, 20
        with tf.device("/GPU:0"):
            a = tf.random.normal((n, n))
            b = tf.random.normal((n, n))
            tf.linalg.matmul(a, b).numpy()
            start = time.perf_counter()
            for _ in range(iters):
                c = tf.linalg.matmul(a, b)
            c.numpy()
        report(backend="tensorflow", gpu=visible, device="GPU:0", tflops_fp32=rate(n, iters, time.perf_counter() - start))
    except ImportError:
        try:
            import cupy
            n, iters = 8192, 20
            a = cupy.random.rand(n, n, dtype=cupy.float32)
            b = cupy.random.rand(n, n, dtype=cupy.float32)
            (a @ b).sum().item()
            cupy.cuda.Device(0).synchronize()
            start = time.perf_counter()
            for _ in range(iters):
                c = a @ b
            cupy.cuda.Device(0).synchronize()
            report(backend="cupy", gpu=visible, device="cuda:0", tflops_fp32=rate(n, iters, time.perf_counter() - start))
        except ImportError:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
            report(backend="nvidia-smi", gpu=visible, device=out.stdout.strip().splitlines()[0] if out.stdout.strip() else "none", ok=out.returncode == 0)
"#;

/// What one smoke job reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SmokeResult {
    /// `torch`, `tensorflow`, `cupy` or `nvidia-smi`.
    pub backend: String,
    /// The GPU it ran on (`CUDA_VISIBLE_DEVICES`).
    pub gpu: String,
    /// The device's name.
    pub device: String,
    /// Achieved FP32 matrix-multiply TFLOP/s.
    pub tflops_fp32: Option<f64>,
    /// Achieved FP16 matrix-multiply TFLOP/s (PyTorch only).
    pub tflops_fp16: Option<f64>,
}

/// The result line of a smoke job's output (the last line starting with `smoke `).
pub fn parse_result(output: &str) -> Option<SmokeResult> {
    let line = output.lines().rev().find(|l| l.starts_with("smoke "))?;
    let mut result = SmokeResult::default();
    for (key, value) in shell_words(&line["smoke ".len()..])
        .iter()
        .filter_map(|w| w.split_once('='))
    {
        match key {
            "backend" => result.backend = value.to_string(),
            "gpu" => result.gpu = value.to_string(),
            "device" => result.device = value.to_string(),
            "tflops_fp32" => result.tflops_fp32 = value.parse().ok(),
            "tflops_fp16" => result.tflops_fp16 = value.parse().ok(),
            _ => {}
        }
    }
    (!result.backend.is_empty()).then_some(result)
}

/// Splits on spaces outside single quotes (what Python's `shlex.quote` writes).
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_line_is_read_with_quoted_device_names() {
        let out = "loading\nsmoke backend=torch gpu=1 device='NVIDIA H200' tflops_fp32=51.3 tflops_fp16=690.2\n";
        let r = parse_result(out).unwrap();
        assert_eq!(r.backend, "torch");
        assert_eq!(r.gpu, "1");
        assert_eq!(r.device, "NVIDIA H200");
        assert_eq!(r.tflops_fp32, Some(51.3));
        assert_eq!(r.tflops_fp16, Some(690.2));
        assert_eq!(parse_result("Traceback (most recent call last):\n"), None);
    }
}
