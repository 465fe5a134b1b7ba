//! Replays of hand-made traces whose answers are worked out in the comments, invariants on
//! a sample of the Philly trace, and trace errors.

use trainctl_core::queue::{LasConfig, Policy, PolicyKind};
use trainctl_sim::{parse_trace, replay, Estimates, Report, SimConfig, TraceJob};

fn cfg(gpus: u32, kind: PolicyKind) -> SimConfig {
    SimConfig {
        gpus,
        policy: Policy::new(kind),
        preemption_cost_s: 60.0,
        estimates: Estimates::None,
    }
}

fn trace(csv: &str) -> Vec<TraceJob> {
    parse_trace("test.csv", csv).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// 2 GPUs. A (1 GPU, 100 s) at 0; B (2 GPUs, 100 s) at 1; C (1 GPU, 10 s) at 2.
const BLOCKED: &str = "job_id,submit_time_s,duration_s,num_gpus\na,0,100,1\nb,1,100,2\nc,2,10,1\n";

#[test]
fn fifo_makes_a_short_job_wait_behind_a_big_one() {
    // A 0-100, B 100-200, C 200-210: JCTs 100, 199, 208.
    let r = replay(&trace(BLOCKED), &cfg(2, PolicyKind::Fifo));
    assert!(close(r.avg_jct_s, (100.0 + 199.0 + 208.0) / 3.0), "{r:?}");
    assert!(close(r.max_wait_s, 198.0));
    assert!(close(r.makespan_s, 210.0));
    // 100 + 2 x 100 + 10 busy GPU-seconds of 2 x 210.
    assert!(close(r.gpu_utilization, 310.0 / 420.0));
}

#[test]
fn backfill_runs_a_job_that_ends_before_the_reservation_only_when_run_times_are_known() {
    // Known run times: B reserved at 100, C (2-12) ends before: JCTs 100, 199, 10.
    let exact = SimConfig {
        estimates: Estimates::Exact,
        ..cfg(2, PolicyKind::Backfill)
    };
    let r = replay(&trace(BLOCKED), &exact);
    assert!(close(r.avg_jct_s, (100.0 + 199.0 + 10.0) / 3.0), "{r:?}");
    // Unknown run times are long: C could delay B, so it waits as under FIFO.
    let none = replay(&trace(BLOCKED), &cfg(2, PolicyKind::Backfill));
    let fifo = replay(&trace(BLOCKED), &cfg(2, PolicyKind::Fifo));
    assert_eq!(none.avg_jct_s, fifo.avg_jct_s);
}

#[test]
fn sjf_starts_every_job_that_fits() {
    let r = replay(&trace(BLOCKED), &cfg(2, PolicyKind::Sjf));
    assert!(close(r.avg_jct_s, (100.0 + 199.0 + 10.0) / 3.0), "{r:?}");
}

/// 1 GPU. A long job at 0 (10,000 s), a short one at 5,000 (100 s).
const LONG_SHORT: &str =
    "job_id,submit_time_s,duration_s,num_gpus\nlong,0,10000,1\nshort,5000,100,1\n";

#[test]
fn las_preempts_a_job_past_its_first_level_for_a_new_one() {
    // long reaches level 1 (3,600 GPU-s) at 3,600; short preempts it at 5,000 and ends at
    // 5,100; long resumes with 5,000 + 60 s of work left and ends at 10,160.
    let r = replay(&trace(LONG_SHORT), &cfg(1, PolicyKind::Las));
    assert_eq!(r.preemptions, 1);
    assert!(close(r.avg_jct_s, (10_160.0 + 100.0) / 2.0), "{r:?}");
    assert!(close(r.makespan_s, 10_160.0));
    let fifo = replay(&trace(LONG_SHORT), &cfg(1, PolicyKind::Fifo));
    assert!(close(fifo.avg_jct_s, (10_000.0 + 5_100.0) / 2.0));
}

#[test]
fn srtf_preempts_for_a_shorter_remaining_time_and_charges_the_preemption_cost() {
    let r = replay(&trace(LONG_SHORT), &cfg(1, PolicyKind::Srtf));
    assert_eq!(r.preemptions, 1);
    assert!(close(r.avg_jct_s, (10_160.0 + 100.0) / 2.0), "{r:?}");
    let free = SimConfig {
        preemption_cost_s: 0.0,
        ..cfg(1, PolicyKind::Srtf)
    };
    assert!(close(
        replay(&trace(LONG_SHORT), &free).makespan_s,
        10_100.0
    ));
}

/// 1 GPU: a long job at 0 and a stream of jobs just short of level 1, one every 3,000 s
/// for 120,000 s, which keeps the GPU busy at level 0.
fn stream() -> Vec<TraceJob> {
    let mut csv = String::from("job_id,submit_time_s,duration_s,num_gpus\nlong,0,20000,1\n");
    for i in 0..40 {
        csv.push_str(&format!("s{i},{},2999,1\n", 1 + 3_000 * i));
    }
    trace(&csv)
}

#[test]
fn the_starvation_guard_bounds_the_wait_of_a_job_preempted_by_a_stream_of_short_ones() {
    let guarded = replay(&stream(), &cfg(1, PolicyKind::Las));
    // The long job is preempted at 3,600 and promoted after waiting 8 x 3,600 s; short jobs
    // it preempts are promoted in turn. A promoted job waits at most the shortest run
    // (600 s) of each promoted job ahead of it plus that of the job it preempts: here at
    // most one is ahead, so no wait lasts more than 1,200 s past its promotion.
    let bound = 2.0 * LasConfig::default().min_run_s;
    let past = guarded.max_wait_past_promotion_s.unwrap();
    assert!(past <= bound, "{past} > {bound}");
    assert!(guarded.max_wait_s < 40_000.0, "{guarded:?}");

    // Without the guard the long job waits until the stream has passed.
    let mut unguarded = cfg(1, PolicyKind::Las);
    unguarded.policy.las.starve_factor = 1e9;
    unguarded.policy.las.starve_min_wait_s = 1e12;
    let r = replay(&stream(), &unguarded);
    assert!(r.max_wait_s > 100_000.0, "{r:?}");
}

fn sample() -> Vec<TraceJob> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/traces/philly_sample_200.csv"
    );
    trainctl_sim::read_trace(std::path::Path::new(path)).unwrap()
}

/// Busy GPU-seconds: run time times GPUs, plus the work lost to preemptions.
fn busy(r: &Report) -> f64 {
    r.gpu_utilization * f64::from(r.gpus) * r.makespan_s
}

#[test]
fn every_policy_finishes_every_job_of_a_philly_sample_and_does_all_its_work() {
    let jobs = sample();
    let work: f64 = jobs.iter().map(|j| j.duration_s * f64::from(j.gpus)).sum();
    let mut avg = std::collections::BTreeMap::new();
    for kind in [
        PolicyKind::Fifo,
        PolicyKind::Backfill,
        PolicyKind::Las,
        PolicyKind::Sjf,
        PolicyKind::Srtf,
    ] {
        let c = SimConfig {
            preemption_cost_s: 0.0,
            ..cfg(32, kind)
        };
        let r = replay(&jobs, &c);
        assert_eq!(r.jobs + r.unschedulable_jobs, 200, "{kind:?}");
        assert!(r.gpu_utilization <= 1.0 + 1e-9, "{kind:?}: {r:?}");
        assert!((busy(&r) - work).abs() / work < 1e-6, "{kind:?}: {r:?}");
        assert!(r.p99_jct_s >= r.median_jct_s && r.avg_queueing_s <= r.avg_jct_s);
        avg.insert(format!("{kind:?}"), r.avg_jct_s);
    }
    assert!(avg["Las"] < avg["Fifo"], "{avg:?}");
    assert!(avg["Sjf"] < avg["Fifo"], "{avg:?}");
    assert!(avg["Backfill"] <= avg["Fifo"], "{avg:?}");
}

#[test]
fn a_bad_trace_line_is_reported_with_its_line_and_field() {
    let err = |csv: &str| parse_trace("t.csv", csv).unwrap_err().to_string();
    assert_eq!(
        err("submit_time_s,duration_s,num_gpus\n0,10,1\n5,ten,1\n"),
        "t.csv:3: duration_s: \"ten\" is not a number of seconds >= 0"
    );
    assert_eq!(
        err("submit_time_s,duration_s\n0,10\n"),
        "t.csv:1: the header has no `num_gpus` column (columns: submit_time_s,duration_s)"
    );
    assert_eq!(
        err("submit_time_s,duration_s,num_gpus\n0,10\n"),
        "t.csv:2: 2 fields, the header has 3"
    );
    assert_eq!(
        err("submit_time_s,duration_s,num_gpus\n0,10,-1\n"),
        "t.csv:2: num_gpus: \"-1\" is not a whole number"
    );
}

#[test]
fn jobs_bigger_than_the_pool_are_counted_not_replayed() {
    let r = replay(&trace(BLOCKED), &cfg(1, PolicyKind::Fifo));
    assert_eq!((r.jobs, r.unschedulable_jobs), (2, 1));
}

#[test]
fn fair_share_serves_the_user_with_less_recent_usage_first() {
    // 1 GPU; user a submits three 100-s jobs at 0, user b one at 1. Once a's first job has
    // run, b has the least recent usage and goes next: b ends at 200, not 400.
    let with_users = "job_id,submit_time_s,duration_s,num_gpus,user\na1,0,100,1,a\na2,0,100,1,a\na3,0,100,1,a\nb1,1,100,1,b\n";
    let r = replay(&trace(with_users), &cfg(1, PolicyKind::Fifo));
    assert!(
        close(r.avg_jct_s, (100.0 + 300.0 + 400.0 + 199.0) / 4.0),
        "{r:?}"
    );
    let one_user = with_users.replace(",a\n", ",x\n").replace(",b\n", ",x\n");
    let r = replay(&trace(&one_user), &cfg(1, PolicyKind::Fifo));
    assert!(
        close(r.avg_jct_s, (100.0 + 200.0 + 300.0 + 399.0) / 4.0),
        "{r:?}"
    );
}
