//! `trainctl sim`: replays a job trace through a queue policy with simulated time.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use trainctl_core::queue::{Policy, PolicyKind};
use trainctl_sim::{read_trace, replay, Estimates, Report, SimConfig};

use crate::args::Output;

/// `sim` arguments.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// The trace: CSV with submit_time_s, duration_s, num_gpus (and optionally job_id, user,
    /// priority) columns.
    #[arg(long)]
    trace: PathBuf,
    /// GPUs in the pool.
    #[arg(long)]
    gpus: u32,
    /// The queue policy.
    #[arg(long, value_enum)]
    policy: PolicyArg,
    /// Seconds of work a preempted job loses.
    #[arg(long, default_value_t = 60.0)]
    preemption_cost: f64,
    /// What fifo, backfill and las know of run times: nothing, or each job's exact run
    /// time (as if it set activeDeadlineSeconds to it). The oracles always know.
    #[arg(long, value_enum, default_value_t = EstimatesArg::None)]
    estimates: EstimatesArg,
    /// Output format (a table when left out).
    #[arg(short, long, value_enum)]
    output: Option<Output>,
}

/// The policies `sim` replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PolicyArg {
    /// Priority then arrival; a job that does not fit blocks the rest (the local queue
    /// before backfilling).
    Fifo,
    /// Arrival order with a reservation for the first job that does not fit.
    Backfill,
    /// Least attained service with preemption and a starvation guard.
    Las,
    /// Oracle: shortest job first, never preempting.
    Sjf,
    /// Oracle: shortest remaining time first, preempting.
    Srtf,
}

/// `--estimates` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EstimatesArg {
    /// Unknown run times.
    None,
    /// Exact run times.
    Exact,
}

/// Replays the trace and prints the report.
pub fn sim(a: &SimArgs) -> Result<()> {
    if a.gpus == 0 {
        bail!("--gpus must be at least 1");
    }
    if !a.preemption_cost.is_finite() || a.preemption_cost < 0.0 {
        bail!(
            "--preemption-cost must be a number of seconds >= 0, not {}",
            a.preemption_cost
        );
    }
    let trace = read_trace(&a.trace)?;
    let kind = match a.policy {
        PolicyArg::Fifo => PolicyKind::Fifo,
        PolicyArg::Backfill => PolicyKind::Backfill,
        PolicyArg::Las => PolicyKind::Las,
        PolicyArg::Sjf => PolicyKind::Sjf,
        PolicyArg::Srtf => PolicyKind::Srtf,
    };
    let cfg = SimConfig {
        gpus: a.gpus,
        policy: Policy::new(kind),
        preemption_cost_s: a.preemption_cost,
        estimates: match a.estimates {
            EstimatesArg::None => Estimates::None,
            EstimatesArg::Exact => Estimates::Exact,
        },
    };
    let report = replay(&trace, &cfg);
    match a.output {
        Some(Output::Json) => println!("{}", serde_json::to_string_pretty(&report)?),
        Some(Output::Yaml) => print!("{}", serde_yaml_ng::to_string(&report)?),
        Some(Output::Wide) | None => print!("{}", table(&report)),
    }
    Ok(())
}

/// The report as `NAME  VALUE` lines.
fn table(r: &Report) -> String {
    let s = |v: f64| format!("{v:.0}");
    let mut rows = vec![
        ("POLICY", r.policy.clone()),
        ("GPUS", r.gpus.to_string()),
        ("JOBS", r.jobs.to_string()),
        ("UNSCHEDULABLE JOBS", r.unschedulable_jobs.to_string()),
        ("AVG JCT (s)", s(r.avg_jct_s)),
        ("MEDIAN JCT (s)", s(r.median_jct_s)),
        ("P99 JCT (s)", s(r.p99_jct_s)),
        ("AVG QUEUEING (s)", s(r.avg_queueing_s)),
        ("MEDIAN QUEUEING (s)", s(r.median_queueing_s)),
        ("P99 QUEUEING (s)", s(r.p99_queueing_s)),
        ("MAX QUEUEING (s)", s(r.max_queueing_s)),
        ("MAX WAIT (s)", s(r.max_wait_s)),
    ];
    if let Some(v) = r.max_wait_past_promotion_s {
        rows.push(("MAX WAIT PAST PROMOTION (s)", s(v)));
    }
    rows.extend([
        ("PREEMPTIONS", r.preemptions.to_string()),
        ("GPU UTILIZATION", format!("{:.3}", r.gpu_utilization)),
        ("MAKESPAN (s)", s(r.makespan_s)),
    ]);
    rows.iter().map(|(k, v)| format!("{k:<28} {v}\n")).collect()
}
