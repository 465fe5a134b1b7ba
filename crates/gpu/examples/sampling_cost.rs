//! CPU time of one resource sample (the `/proc` reads that `top job` and the resource history
//! do) for 1, 10 and 50 replicas, each a sleeping process leading its own group, side by side
//! for the two ways to read them: following the replicas' process trees (what trainctl does)
//! and scanning every process on the machine (the fallback). Prints one JSON line per replica
//! count; `bench/gpu_sampling.py` runs it and compares with the target.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use trainctl_gpu::usage::{self, GroupUsage};

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given; the struct is zeroed and owned here.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// CPU milliseconds per sample of `read` over `samples` samples.
fn cost(samples: usize, groups: &[u32], read: fn(&[u32]) -> BTreeMap<u32, GroupUsage>) -> f64 {
    let before = cpu_seconds();
    for _ in 0..samples {
        let usage = read(groups);
        assert!(usage.values().all(|u| u.processes == 1), "{usage:?}");
    }
    (cpu_seconds() - before) / samples as f64 * 1000.0
}

fn main() {
    let samples: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    for replicas in [1usize, 10, 50] {
        let mut children: Vec<Child> = (0..replicas)
            .map(|_| {
                Command::new("sleep")
                    .arg("600")
                    .process_group(0)
                    .spawn()
                    .expect("sleep starts")
            })
            .collect();
        let groups: Vec<u32> = children.iter().map(Child::id).collect();
        let processes = std::fs::read_dir("/proc")
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                    .count()
            })
            .unwrap_or(0);
        let tree = cost(samples, &groups, usage::by_tree);
        let scan = cost(samples, &groups, usage::by_scan);
        println!(
            "{{\"replicas\": {replicas}, \"samples\": {samples}, \"processes_on_machine\": {processes}, \"cpu_ms_per_sample\": {tree:.4}, \"cpu_ms_per_sample_per_replica\": {:.4}, \"scan_cpu_ms_per_sample\": {scan:.4}, \"scan_cpu_ms_per_sample_per_replica\": {:.4}}}",
            tree / replicas as f64,
            scan / replicas as f64
        );
        for c in &mut children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
