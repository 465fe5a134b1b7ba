//! Reading GPUs through the NVIDIA Management Library, loaded at run time.

use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::{Device, Nvml};

use crate::{cuda, Driver, Gpu, GpuProcess};

const MIB: u64 = 1024 * 1024;

/// The driver and every GPU, or why NVML could not be used.
pub(crate) fn read() -> Result<(Driver, Vec<Gpu>), String> {
    let nvml = Nvml::init().map_err(|e| e.to_string())?;
    let driver = Driver {
        version: nvml.sys_driver_version().ok(),
        cuda: nvml
            .sys_cuda_driver_version()
            .ok()
            .map(cuda::version_from_number),
    };
    let count = nvml.device_count().map_err(|e| e.to_string())?;
    let mut gpus = Vec::with_capacity(count as usize);
    for index in 0..count {
        let device = nvml
            .device_by_index(index)
            .map_err(|e| format!("GPU {index}: {e}"))?;
        gpus.push(gpu(index, &device));
    }
    Ok((driver, gpus))
}

fn gpu(index: u32, device: &Device) -> Gpu {
    let memory = device.memory_info().ok();
    Gpu {
        index,
        uuid: device.uuid().ok(),
        name: device.name().ok(),
        memory_total_mib: memory.as_ref().map(|m| m.total / MIB),
        memory_used_mib: memory.as_ref().map(|m| m.used / MIB),
        utilization_pct: device.utilization_rates().ok().map(|u| u.gpu),
        temperature_c: device.temperature(TemperatureSensor::Gpu).ok(),
        power_w: device.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
        ecc_uncorrected: device
            .total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)
            .ok(),
        processes: device
            .running_compute_processes()
            .unwrap_or_default()
            .into_iter()
            .map(|p| GpuProcess {
                pid: p.pid,
                memory_mib: match p.used_gpu_memory {
                    UsedGpuMemory::Used(bytes) => Some(bytes / MIB),
                    UsedGpuMemory::Unavailable => None,
                },
            })
            .collect(),
    }
}
