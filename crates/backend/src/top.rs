//! `top` on this machine: GPUs with what holds and uses them ([`node`]), and each running
//! replica's CPU, memory and GPU use ([`replicas`]), joining the local engine's records with
//! a GPU reading and `/proc`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use trainctl_gpu::usage::{self, GroupUsage};
use trainctl_gpu::{Gpu, GpuReader, Reading, Source};
use trainctl_local::store::{ReplicaStatus, Store};

/// A running replica as the local engine recorded it.
#[derive(Debug, Clone)]
struct Running {
    job: String,
    replica: String,
    pid: u32,
    gpus: Vec<u32>,
}

/// The running replicas (of `only`, when given); none without a state directory.
fn running(store: Option<&Store>, only: Option<&str>) -> anyhow::Result<Vec<Running>> {
    let mut out = Vec::new();
    let Some(store) = store else {
        return Ok(out);
    };
    let jobs = match only {
        Some(name) => store.job(name)?.into_iter().collect(),
        None => store.jobs()?,
    };
    for job in jobs {
        if job.finished.is_some() {
            continue;
        }
        for r in store.replicas(&job.name)? {
            if r.state == ReplicaStatus::Running && r.pid > 0 {
                out.push(Running {
                    job: job.name.clone(),
                    replica: r.replica.to_string(),
                    pid: r.pid as u32,
                    gpus: r.gpus,
                });
            }
        }
    }
    Ok(out)
}

/// The GPUs trainctl may hand out, with the devices' readings where a source gives them
/// (with `TRAINCTL_GPUS`, the listed indices read through NVML or nvidia-smi).
pub fn read_gpus(reader: &dyn GpuReader) -> Reading {
    let mut reading = reader.read();
    if reading.source == Source::Variable {
        let devices = trainctl_gpu::read_devices();
        let mut by_index: BTreeMap<u32, Gpu> =
            devices.gpus.into_iter().map(|g| (g.index, g)).collect();
        for gpu in &mut reading.gpus {
            if let Some(device) = by_index.remove(&gpu.index) {
                *gpu = device;
            }
        }
        reading.driver = devices.driver;
    }
    reading
}

/// One GPU in `top node`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeGpu {
    /// The device and its readings.
    #[serde(flatten)]
    pub gpu: Gpu,
    /// `job/replica` holding it, when a trainctl replica does.
    pub allocated_to: Option<String>,
    /// Busy: a kernel ran lately or a process holds it.
    pub in_use: bool,
}

/// `top node`: this machine's GPUs.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Where the readings came from.
    pub source: Source,
    /// GPUs trainctl may hand out.
    pub total: usize,
    /// GPUs held by trainctl's replicas.
    pub allocated: usize,
    /// GPUs busy.
    pub in_use: usize,
    /// Every GPU.
    pub gpus: Vec<NodeGpu>,
}

/// Reads `top node` now (`store` is None where trainctl has no state directory yet).
pub fn node(store: Option<&Store>, reader: &dyn GpuReader) -> anyhow::Result<Node> {
    let reading = read_gpus(reader);
    let mut holder: BTreeMap<u32, String> = BTreeMap::new();
    for r in running(store, None)? {
        for g in &r.gpus {
            holder.insert(*g, format!("{}/{}", r.job, r.replica));
        }
    }
    let gpus: Vec<NodeGpu> = reading
        .gpus
        .into_iter()
        .map(|gpu| NodeGpu {
            allocated_to: holder.get(&gpu.index).cloned(),
            in_use: gpu.utilization_pct.unwrap_or(0) > 0 || !gpu.processes.is_empty(),
            gpu,
        })
        .collect();
    Ok(Node {
        source: reading.source,
        total: gpus.len(),
        allocated: gpus.iter().filter(|g| g.allocated_to.is_some()).count(),
        in_use: gpus.iter().filter(|g| g.in_use).count(),
        gpus,
    })
}

/// One running replica in `top job`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaUse {
    /// Its job.
    pub job: String,
    /// e.g. `worker-0`.
    pub replica: String,
    /// Its process group.
    pub pid: u32,
    /// CPU over the sampling interval, percent of one core.
    pub cpu_pct: f64,
    /// Resident memory of its processes, MiB.
    pub rss_mib: u64,
    /// The GPUs it was granted.
    pub gpus: Vec<u32>,
    /// Utilization of those GPUs (the highest), percent.
    pub gpu_utilization_pct: Option<u32>,
    /// GPU memory its processes hold, MiB.
    pub gpu_memory_mib: Option<u64>,
}

/// Samples the running replicas' usage; CPU percent is over the time since the previous
/// sample of the same replica (0 on its first).
#[derive(Debug, Default)]
pub struct Sampler {
    previous: BTreeMap<u32, (Instant, GroupUsage)>,
}

impl Sampler {
    /// Reads every running replica (of `only`, when given) now.
    pub fn sample(
        &mut self,
        store: Option<&Store>,
        reader: &dyn GpuReader,
        only: Option<&str>,
    ) -> anyhow::Result<Vec<ReplicaUse>> {
        let running = running(store, only)?;
        let groups: Vec<u32> = running.iter().map(|r| r.pid).collect();
        let now = Instant::now();
        let usage = usage::groups(&groups);
        let reading = if running.iter().any(|r| !r.gpus.is_empty()) {
            read_gpus(reader)
        } else {
            Reading {
                source: Source::None,
                driver: Default::default(),
                gpus: Vec::new(),
                failures: Vec::new(),
            }
        };
        let mut gpu_memory: BTreeMap<u32, u64> = BTreeMap::new();
        for process in reading.gpus.iter().flat_map(|g| &g.processes) {
            if let Some(group) = trainctl_gpu::process_group(process.pid) {
                *gpu_memory.entry(group).or_default() += process.memory_mib.unwrap_or(0);
            }
        }
        let mut previous = BTreeMap::new();
        let used = running
            .into_iter()
            .map(|r| {
                let current = usage.get(&r.pid).copied().unwrap_or_default();
                let cpu_pct = match self.previous.get(&r.pid) {
                    Some((at, before)) => {
                        usage::cpu_percent(before, &current, now.duration_since(*at).as_secs_f64())
                    }
                    None => 0.0,
                };
                previous.insert(r.pid, (now, current));
                ReplicaUse {
                    cpu_pct,
                    rss_mib: current.rss_mib(),
                    gpu_utilization_pct: reading
                        .gpus
                        .iter()
                        .filter(|g| r.gpus.contains(&g.index))
                        .filter_map(|g| g.utilization_pct)
                        .max(),
                    gpu_memory_mib: (!r.gpus.is_empty())
                        .then(|| gpu_memory.get(&r.pid).copied().unwrap_or(0)),
                    job: r.job,
                    replica: r.replica,
                    pid: r.pid,
                    gpus: r.gpus,
                }
            })
            .collect();
        self.previous = previous;
        Ok(used)
    }
}

/// Samples every running replica (of `only`, when given) twice, `interval` apart: `top job`.
pub fn replicas(
    store: Option<&Store>,
    reader: &dyn GpuReader,
    only: Option<&str>,
    interval: Duration,
) -> anyhow::Result<Vec<ReplicaUse>> {
    let mut sampler = Sampler::default();
    sampler.sample(store, reader, only)?;
    std::thread::sleep(interval);
    sampler.sample(store, reader, only)
}
