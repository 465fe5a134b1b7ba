//! This machine's GPUs for the local engine: `TRAINCTL_GPUS` (a comma-separated list of
//! device indices, empty for none) when set, else what NVML or `nvidia-smi` lists, else none.

use trainctl_gpu::{GpuReader, System};

/// The device indices usable by jobs.
pub fn inventory() -> Vec<u32> {
    System.read().gpus.iter().map(|g| g.index).collect()
}

/// Where the inventory came from, for messages.
pub fn source() -> &'static str {
    System.read().source.label()
}
