//! Resource history of a local job: while it runs, every replica's CPU, memory, GPU
//! utilization and GPU memory are sampled into the job's metrics database (runs
//! `resources/<replica>`, step = milliseconds since the job was created), beside its
//! training metrics; and a replica that holds GPUs while barely using them gets a warning.

use anyhow::Context as _;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use trainctl_gpu::System;
use trainctl_local::store::Store;
use trainctl_local::Home;
use trainctl_metrics::db::{MetricsDb, TaggedPoint};
use trainctl_metrics::series::Point;

use crate::top::{ReplicaUse, Sampler};

/// The run prefix of resource series.
pub const RUN_PREFIX: &str = "resources";

/// When to sample and when to call a GPU idle, from the environment.
#[derive(Debug, Clone, Copy)]
pub struct HistoryConfig {
    /// Time between samples (`TRAINCTL_RESOURCE_INTERVAL_SECONDS`, default 10).
    pub interval: Duration,
    /// Utilization under which a GPU counts as idle (`TRAINCTL_GPU_IDLE_PERCENT`, default 5).
    pub idle_percent: u32,
    /// How long it must stay idle before the warning (`TRAINCTL_GPU_IDLE_MINUTES`, default 10).
    pub idle_after: Duration,
}

impl HistoryConfig {
    /// Defaults, overridden by the environment.
    pub fn from_env() -> Self {
        let number = |name: &str, default: f64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
                .unwrap_or(default)
        };
        HistoryConfig {
            interval: Duration::from_secs_f64(
                number("TRAINCTL_RESOURCE_INTERVAL_SECONDS", 10.0).max(0.05),
            ),
            idle_percent: number("TRAINCTL_GPU_IDLE_PERCENT", 5.0) as u32,
            idle_after: Duration::from_secs_f64(number("TRAINCTL_GPU_IDLE_MINUTES", 10.0) * 60.0),
        }
    }
}

/// Tells when a replica has held GPUs below the idle threshold for the whole window.
#[derive(Debug, Default)]
pub struct IdleWatch {
    /// Since when each replica has been idle, and whether it was warned about.
    idle_since: BTreeMap<String, (f64, bool)>,
}

impl IdleWatch {
    /// Takes one sample at time `t` (seconds); returns the warning to give, once per idle
    /// stretch of a replica.
    pub fn observe(&mut self, used: &ReplicaUse, t: f64, cfg: &HistoryConfig) -> Option<String> {
        let key = format!("{}/{}", used.job, used.replica);
        let idle = !used.gpus.is_empty()
            && used
                .gpu_utilization_pct
                .is_some_and(|u| u < cfg.idle_percent);
        if !idle {
            self.idle_since.remove(&key);
            return None;
        }
        let (since, warned) = self.idle_since.entry(key).or_insert((t, false));
        if *warned || t - *since < cfg.idle_after.as_secs_f64() {
            return None;
        }
        *warned = true;
        Some(format!(
            "{} holds GPU {} but used under {}% of it for {:.0} minutes: free it for others or check the job",
            used.replica,
            crate::view::list_or_dash(&used.gpus),
            cfg.idle_percent,
            (t - *since) / 60.0
        ))
    }
}

/// The points of one sample, at `t` seconds for a job created at `created`.
pub fn points(used: &ReplicaUse, t: f64, created: f64) -> Vec<TaggedPoint> {
    let step = ((t - created) * 1000.0).max(0.0) as i64;
    let run = format!("{RUN_PREFIX}/{}", used.replica);
    let mut values = vec![
        ("cpu_percent", used.cpu_pct),
        ("memory_mib", used.rss_mib as f64),
    ];
    if let Some(u) = used.gpu_utilization_pct {
        values.push(("gpu_utilization_percent", f64::from(u)));
    }
    if let Some(m) = used.gpu_memory_mib {
        values.push(("gpu_memory_mib", m as f64));
    }
    values
        .into_iter()
        .map(|(tag, value)| TaggedPoint {
            run: run.clone(),
            tag: tag.to_string(),
            point: Point {
                step,
                wall_time: t,
                value,
            },
        })
        .collect()
}

/// Samples job `name` every interval until `ended` is set; problems are warned about on
/// stderr once and end the sampling, never the job.
pub fn sample_until(home: &Home, name: &str, ended: &AtomicBool, cfg: &HistoryConfig) {
    if let Err(e) = sample_loop(home, name, ended, cfg) {
        eprintln!("warning: resource history of job {name} stopped: {e:#}");
    }
}

fn sample_loop(
    home: &Home,
    name: &str,
    ended: &AtomicBool,
    cfg: &HistoryConfig,
) -> anyhow::Result<()> {
    let store = Store::open(&home.db_path())?;
    let created = store.job(name)?.map_or(0.0, |j| j.created);
    // The supervisor, another process, creates the job's directory too; sampling may start
    // before it has.
    let dir = home.job_dir(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut db = MetricsDb::open(&trainctl_metrics::collect::db_path(&dir))?;
    let mut sampler = Sampler::default();
    let mut idle = IdleWatch::default();
    while !ended.load(Ordering::SeqCst) {
        let t = trainctl_local::now();
        let used = sampler.sample(Some(&store), &System, Some(name))?;
        let mut batch = Vec::new();
        for u in &used {
            batch.extend(points(u, t, created));
            if let Some(warning) = idle.observe(u, t, cfg) {
                store.add_event(name, t, true, crate::view::GPU_IDLE_REASON, &warning)?;
            }
        }
        db.add(&batch)?;
        std::thread::park_timeout(cfg.interval);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(util: Option<u32>, gpus: Vec<u32>) -> ReplicaUse {
        ReplicaUse {
            job: "j".into(),
            replica: "worker-0".into(),
            pid: 1,
            cpu_pct: 12.5,
            rss_mib: 300,
            gpus,
            gpu_utilization_pct: util,
            gpu_memory_mib: Some(100),
        }
    }

    #[test]
    fn an_idle_gpu_is_warned_about_once_after_the_window_and_again_after_it_was_busy() {
        let cfg = HistoryConfig {
            interval: Duration::from_secs(10),
            idle_percent: 5,
            idle_after: Duration::from_secs(600),
        };
        let mut watch = IdleWatch::default();
        // (time, utilization, warned?)
        let table = [
            (0.0, Some(2), false),
            (300.0, Some(4), false),
            (600.0, Some(1), true),
            (900.0, Some(0), false),
            (1000.0, Some(60), false),
            (1100.0, Some(0), false),
            (1700.0, Some(3), true),
        ];
        for (t, util, warned) in table {
            let got = watch.observe(&sample(util, vec![0]), t, &cfg);
            assert_eq!(got.is_some(), warned, "at {t}s with {util:?}%: {got:?}");
        }
        let cpu_only = sample(Some(0), vec![]);
        assert!((0..10).all(|i| watch
            .observe(&cpu_only, f64::from(i) * 600.0, &cfg)
            .is_none()));
    }

    #[test]
    fn a_sample_becomes_one_point_per_reading_under_the_replicas_run() {
        let pts = points(&sample(Some(40), vec![0]), 1_000.5, 1_000.0);
        let tags: Vec<&str> = pts.iter().map(|p| p.tag.as_str()).collect();
        assert_eq!(
            tags,
            [
                "cpu_percent",
                "memory_mib",
                "gpu_utilization_percent",
                "gpu_memory_mib"
            ]
        );
        assert!(pts
            .iter()
            .all(|p| p.run == "resources/worker-0" && p.point.step == 500));
    }
}
