//! The queue policies side by side on a whole trace: FIFO (the local queue before
//! backfilling), FIFO + backfilling, least attained service (LAS, default preemption cost)
//! and the SJF and SRTF oracles, at several pool sizes, with ratios to the SJF oracle and to
//! FIFO, and the targets of the issue checked at 512 GPUs.
//!
//! cargo run --release -p trainctl-sim --example queue_policies -- \
//!     [--trace tests/data/traces/philly_jobs.csv] [--gpus 448,512,640] [--preemption-cost 60]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use trainctl_core::queue::{Policy, PolicyKind};
use trainctl_sim::{read_trace, replay, Estimates, Report, SimConfig};

struct Args {
    trace: PathBuf,
    gpus: Vec<u32>,
    preemption_cost_s: f64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        trace: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/traces/philly_jobs.csv"
        )),
        gpus: vec![448, 512, 640],
        preemption_cost_s: 60.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--trace" => a.trace = value.into(),
            "--gpus" => {
                a.gpus = value
                    .split(',')
                    .map(|g| g.parse().map_err(|_| format!("--gpus: bad count {g:?}")))
                    .collect::<Result<_, _>>()?
            }
            "--preemption-cost" => {
                a.preemption_cost_s = value
                    .parse()
                    .map_err(|_| format!("--preemption-cost: bad number {value:?}"))?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

/// The rows of one pool: name, policy, estimates.
const ROWS: &[(&str, PolicyKind, Estimates)] = &[
    ("fifo", PolicyKind::Fifo, Estimates::None),
    ("backfill", PolicyKind::Backfill, Estimates::None),
    (
        "backfill (exact estimates)",
        PolicyKind::Backfill,
        Estimates::Exact,
    ),
    ("las", PolicyKind::Las, Estimates::None),
    ("sjf (oracle)", PolicyKind::Sjf, Estimates::Exact),
    ("srtf (oracle)", PolicyKind::Srtf, Estimates::Exact),
];

fn main() -> ExitCode {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let trace = match read_trace(&a.trace) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    println!("trace {} ({} jobs)", a.trace.display(), trace.len());
    for &gpus in &a.gpus {
        let reports: Vec<(&str, Report, f64)> = ROWS
            .iter()
            .map(|(name, kind, estimates)| {
                let cfg = SimConfig {
                    gpus,
                    policy: Policy::new(*kind),
                    preemption_cost_s: a.preemption_cost_s,
                    estimates: *estimates,
                };
                let t = Instant::now();
                let r = replay(&trace, &cfg);
                (*name, r, t.elapsed().as_secs_f64())
            })
            .collect();
        let avg = |n: &str| {
            reports
                .iter()
                .find(|r| r.0 == n)
                .map_or(f64::NAN, |r| r.1.avg_jct_s)
        };
        let (sjf, fifo) = (avg("sjf (oracle)"), avg("fifo"));
        println!("\n{gpus} GPUs");
        println!(
            "| policy | avg JCT s | /SJF | /FIFO | median JCT s | p99 JCT s | avg queueing s | max wait s | past promotion s | preemptions | GPU util | makespan s | replay s |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for (name, r, secs) in &reports {
            println!(
                "| {name} | {:.0} | {:.2} | {:.3} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {:.3} | {:.0} | {secs:.2} |",
                r.avg_jct_s,
                r.avg_jct_s / sjf,
                r.avg_jct_s / fifo,
                r.median_jct_s,
                r.p99_jct_s,
                r.avg_queueing_s,
                r.max_wait_s,
                r.max_wait_past_promotion_s.map_or("-".into(), |v| format!("{v:.0}")),
                r.preemptions,
                r.gpu_utilization,
                r.makespan_s,
            );
        }
        if gpus == 512 {
            let las = avg("las");
            let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
            println!(
                "\ntargets at 512 GPUs: LAS avg JCT / SJF = {:.2} (<= 1.5: {}), LAS / FIFO = {:.3} (<= 0.1: {})",
                las / sjf,
                verdict(las / sjf <= 1.5),
                las / fifo,
                verdict(las / fifo <= 0.1)
            );
        }
    }
    ExitCode::SUCCESS
}
