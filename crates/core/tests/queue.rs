//! The queue policies' decisions, table-driven: who starts, who is preempted, which job
//! gets a reservation and when; levels, promotion, fair share, gangs and priorities.

use trainctl_core::queue::fair_share::{decayed_usage, Usage};
use trainctl_core::queue::{
    decide, explain, level_of, Policy, PolicyKind, QueueJob, WaitReason, UNKNOWN_RUN_S,
};

use PolicyKind::{Backfill, Fifo, Las, Sjf, Srtf};

/// A 1-GPU job `key` arriving as number `seq`, waiting since 0, never run, unknown length.
fn job(key: &'static str, gpus: u32, seq: u64) -> QueueJob<&'static str> {
    QueueJob {
        key,
        gpus,
        priority: 0,
        seq,
        preemptible: false,
        attained_gpu_s: 0.0,
        ran_s: 0.0,
        since: 0.0,
        remaining_s: None,
        usage: 0.0,
    }
}

trait With {
    fn prio(self, p: i32) -> Self;
    fn preemptible(self) -> Self;
    fn attained(self, gpu_s: f64) -> Self;
    fn ran(self, s: f64) -> Self;
    fn since(self, t: f64) -> Self;
    fn remaining(self, s: f64) -> Self;
    fn usage(self, u: f64) -> Self;
}

impl With for QueueJob<&'static str> {
    fn prio(self, priority: i32) -> Self {
        QueueJob { priority, ..self }
    }
    fn preemptible(self) -> Self {
        QueueJob {
            preemptible: true,
            ..self
        }
    }
    fn attained(self, attained_gpu_s: f64) -> Self {
        QueueJob {
            attained_gpu_s,
            ..self
        }
    }
    fn ran(self, ran_s: f64) -> Self {
        QueueJob { ran_s, ..self }
    }
    fn since(self, since: f64) -> Self {
        QueueJob { since, ..self }
    }
    fn remaining(self, s: f64) -> Self {
        QueueJob {
            remaining_s: Some(s),
            ..self
        }
    }
    fn usage(self, usage: f64) -> Self {
        QueueJob { usage, ..self }
    }
}

/// One decision: the state in, the decisions expected out.
struct Case {
    name: &'static str,
    kind: PolicyKind,
    now: f64,
    free: u32,
    waiting: Vec<QueueJob<&'static str>>,
    running: Vec<QueueJob<&'static str>>,
    start: &'static [&'static str],
    preempt: &'static [&'static str],
    /// The reserved job and when.
    reserved: Option<(&'static str, f64)>,
}

const NOW: f64 = 10_000.0;

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "fifo serves priority then arrival and blocks behind a job that does not fit",
            kind: Fifo,
            now: NOW,
            free: 3,
            waiting: vec![job("a", 1, 1), job("b", 4, 2), job("c", 1, 3), job("hi", 2, 9).prio(5)],
            running: vec![],
            start: &["hi", "a"],
            preempt: &[],
            reserved: None,
        },
        Case {
            name: "fifo with every GPU free starts everyone",
            kind: Fifo,
            now: NOW,
            free: 8,
            waiting: vec![job("a", 1, 1), job("b", 4, 2), job("c", 1, 3), job("hi", 2, 9).prio(5)],
            running: vec![],
            start: &["hi", "a", "b", "c"],
            preempt: &[],
            reserved: None,
        },
        Case {
            name: "fifo never preempts, even a preemptible job at a higher level",
            kind: Fifo,
            now: NOW,
            free: 0,
            waiting: vec![job("new", 1, 2)],
            running: vec![job("old", 1, 1).preemptible().attained(1e6).since(0.0)],
            start: &[],
            preempt: &[],
            reserved: None,
        },
        Case {
            name: "backfill reserves the head at the earliest known end and starts a job that ends before it",
            kind: Backfill,
            now: NOW,
            free: 2,
            waiting: vec![
                job("head", 4, 1),
                job("short", 2, 2).remaining(500.0),
                job("long", 1, 3).remaining(5_000.0),
            ],
            running: vec![
                job("r1", 2, 0).remaining(1_000.0).since(0.0),
                job("r2", 4, 0).remaining(9_000.0).since(0.0),
            ],
            start: &["short"],
            preempt: &[],
            reserved: Some(("head", NOW + 1_000.0)),
        },
        Case {
            name: "backfill never starts a job of unknown length that would hold GPUs the head needs",
            kind: Backfill,
            now: NOW,
            free: 2,
            waiting: vec![job("head", 4, 1), job("unknown", 1, 2)],
            running: vec![job("r1", 2, 0).remaining(1_000.0).since(0.0)],
            start: &[],
            preempt: &[],
            reserved: Some(("head", NOW + 1_000.0)),
        },
        Case {
            name: "backfill lets a long job use GPUs the head will not need at its reservation",
            kind: Backfill,
            now: NOW,
            free: 3,
            waiting: vec![job("head", 4, 1), job("long", 1, 2), job("long2", 1, 3)],
            running: vec![job("r1", 2, 0).remaining(1_000.0).since(0.0)],
            start: &["long"],
            preempt: &[],
            reserved: Some(("head", NOW + 1_000.0)),
        },
        Case {
            name: "backfill counts an unknown end as long: the reservation waits for the job with a known end",
            kind: Backfill,
            now: NOW,
            free: 0,
            waiting: vec![job("head", 2, 1)],
            running: vec![
                job("unknown", 1, 0).since(0.0),
                job("known", 1, 0).remaining(100.0).since(0.0),
            ],
            start: &[],
            preempt: &[],
            reserved: Some(("head", UNKNOWN_RUN_S)),
        },
        Case {
            name: "las: a new job preempts a preemptible job of a higher level",
            kind: Las,
            now: NOW,
            free: 0,
            waiting: vec![job("new", 1, 2).since(NOW)],
            running: vec![job("old", 1, 1).preemptible().attained(4_000.0).since(0.0)],
            start: &["new"],
            preempt: &["old"],
            reserved: None,
        },
        Case {
            name: "las never preempts a job that may not be preempted",
            kind: Las,
            now: NOW,
            free: 0,
            waiting: vec![job("new", 1, 2).since(NOW)],
            running: vec![job("old", 1, 1).attained(400_000.0).since(0.0)],
            start: &[],
            preempt: &[],
            reserved: Some(("new", UNKNOWN_RUN_S)),
        },
        Case {
            name: "las never preempts within a level: first come first served",
            kind: Las,
            now: NOW,
            free: 0,
            waiting: vec![job("new", 1, 2).since(NOW)],
            running: vec![job("old", 1, 1).preemptible().attained(3_000.0).since(7_000.0)],
            start: &[],
            preempt: &[],
            // old reaches level 1 (3,600 GPU-s) 600 s from now.
            reserved: Some(("new", NOW + 600.0)),
        },
        Case {
            name: "las lets a job run its shortest run (10 minutes) before preempting it",
            kind: Las,
            now: NOW,
            free: 0,
            waiting: vec![job("new", 1, 2).since(NOW)],
            running: vec![job("old", 1, 1).preemptible().attained(50_000.0).since(NOW - 100.0)],
            start: &[],
            preempt: &[],
            reserved: Some(("new", NOW + 500.0)),
        },
        Case {
            name: "las preempts whole gangs, worst level first, only as many as needed",
            kind: Las,
            now: NOW,
            free: 1,
            waiting: vec![job("big", 4, 9).since(NOW)],
            running: vec![
                job("l1", 2, 1).preemptible().attained(4_000.0).since(0.0),
                job("l3", 2, 2).preemptible().attained(400_000.0).since(0.0),
                job("l2", 1, 3).preemptible().attained(40_000.0).since(0.0),
                job("l0", 1, 4).preemptible().attained(10.0).since(NOW - 10.0),
            ],
            start: &["big"],
            preempt: &["l3", "l2"],
            reserved: None,
        },
        Case {
            name: "las does not preempt when even every later job together frees too few GPUs",
            kind: Las,
            now: NOW,
            free: 0,
            waiting: vec![job("big", 4, 9).since(NOW)],
            running: vec![
                job("l3", 2, 2).preemptible().attained(400_000.0).since(0.0),
                job("fixed", 2, 3).attained(400_000.0).remaining(50.0).since(0.0),
            ],
            start: &[],
            preempt: &[],
            reserved: Some(("big", NOW + 50.0)),
        },
        Case {
            name: "las serves the lower level first, first come first served within a level",
            kind: Las,
            now: NOW,
            free: 2,
            waiting: vec![
                job("l1-early", 1, 1).attained(5_000.0).ran(5_000.0).since(NOW - 10.0),
                job("l0-late", 1, 3).since(NOW - 10.0),
                job("l0-early", 1, 2).since(NOW - 10.0),
            ],
            running: vec![],
            start: &["l0-early", "l0-late"],
            preempt: &[],
            reserved: Some(("l1-early", NOW + UNKNOWN_RUN_S)),
        },
        Case {
            name: "las promotes a job that waited 8 times its run time ahead of level 0",
            kind: Las,
            now: NOW,
            free: 1,
            waiting: vec![
                job("starving", 1, 1).attained(50_000.0).ran(1_000.0).since(NOW - 8_000.0),
                job("fresh", 1, 2).since(NOW - 10.0),
            ],
            running: vec![],
            start: &["starving"],
            preempt: &[],
            reserved: Some(("fresh", NOW + UNKNOWN_RUN_S)),
        },
        Case {
            name: "las: a promoted job preempts a level-0 job that has run its shortest run",
            kind: Las,
            now: NOW,
            free: 0,
            waiting: vec![job("starving", 1, 1).attained(50_000.0).ran(1_000.0).since(NOW - 8_000.0)],
            running: vec![job("l0", 1, 2).preemptible().attained(700.0).since(NOW - 700.0)],
            start: &["starving"],
            preempt: &["l0"],
            reserved: None,
        },
        Case {
            name: "las: one second before promotion the job still waits behind level 0",
            kind: Las,
            now: NOW,
            free: 1,
            waiting: vec![
                job("starving", 1, 1).attained(50_000.0).ran(1_000.0).since(NOW - 7_999.0),
                job("fresh", 1, 2).since(NOW - 10.0),
            ],
            running: vec![],
            start: &["fresh"],
            preempt: &[],
            reserved: Some(("starving", NOW + UNKNOWN_RUN_S)),
        },
        Case {
            name: "priorities come first: a high-priority job at a high level beats level 0",
            kind: Las,
            now: NOW,
            free: 1,
            waiting: vec![
                job("low", 1, 1).since(NOW),
                job("high", 1, 2).prio(1).attained(1e6).ran(1e5).since(NOW),
            ],
            running: vec![],
            start: &["high"],
            preempt: &[],
            reserved: Some(("low", NOW + UNKNOWN_RUN_S)),
        },
        Case {
            name: "las never preempts a higher-priority job, whatever its level",
            kind: Las,
            now: NOW,
            free: 0,
            waiting: vec![job("low", 1, 2).since(NOW)],
            running: vec![job("high", 1, 1).prio(3).preemptible().attained(1e6).since(0.0)],
            start: &[],
            preempt: &[],
            reserved: Some(("low", UNKNOWN_RUN_S)),
        },
        Case {
            name: "fair share: among equals the user with less recent usage goes first",
            kind: Backfill,
            now: NOW,
            free: 1,
            waiting: vec![job("heavy", 1, 1).usage(9_000.0), job("light", 1, 2).usage(10.0)],
            running: vec![],
            start: &["light"],
            preempt: &[],
            reserved: Some(("heavy", NOW + UNKNOWN_RUN_S)),
        },
        Case {
            name: "fair share never overrides priority",
            kind: Backfill,
            now: NOW,
            free: 1,
            waiting: vec![job("heavy", 1, 1).prio(1).usage(9_000.0), job("light", 1, 2).usage(10.0)],
            running: vec![],
            start: &["heavy"],
            preempt: &[],
            reserved: Some(("light", NOW + UNKNOWN_RUN_S)),
        },
        Case {
            name: "sjf starts the shortest jobs that fit and skips the ones that do not",
            kind: Sjf,
            now: NOW,
            free: 3,
            waiting: vec![
                job("long", 1, 1).remaining(1_000.0),
                job("big", 4, 2).remaining(1.0),
                job("short", 2, 3).remaining(10.0),
            ],
            running: vec![job("r", 4, 0).preemptible().remaining(1e6)],
            start: &["short", "long"],
            preempt: &[],
            reserved: None,
        },
        Case {
            name: "srtf preempts a running job with more remaining time",
            kind: Srtf,
            now: NOW,
            free: 0,
            waiting: vec![job("short", 1, 2).remaining(10.0)],
            running: vec![
                job("longer", 1, 1).preemptible().remaining(500.0).since(NOW),
                job("shorter", 1, 0).preemptible().remaining(5.0).since(NOW),
            ],
            start: &["short"],
            preempt: &["longer"],
            reserved: None,
        },
    ]
}

#[test]
fn each_policy_decides_as_its_table_says() {
    for c in cases() {
        let policy = Policy::new(c.kind);
        let d = decide(&policy, c.now, c.free, &c.waiting, &c.running);
        assert_eq!(d.start, c.start, "{}: started", c.name);
        assert_eq!(d.preempt, c.preempt, "{}: preempted", c.name);
        let reserved = d.reservation.map(|r| (r.key, r.at));
        assert_eq!(reserved, c.reserved, "{}: reservation", c.name);
    }
}

#[test]
fn levels_count_the_thresholds_reached() {
    let t = [3_600.0, 36_000.0, 360_000.0];
    for (attained, level) in [
        (0.0, 0),
        (3_599.9, 0),
        (3_600.0, 1),
        (40_000.0, 2),
        (1e9, 3),
    ] {
        assert_eq!(level_of(&t, attained), level, "{attained} GPU-s");
    }
}

#[test]
fn decayed_usage_halves_every_half_life() {
    let h = 3_600.0;
    let one_hour = |from: f64| Usage {
        gpus: 2,
        from,
        to: from + h,
    };
    // Used just now: 2 GPUs x h/ln2 x (1 - 1/2).
    let recent = decayed_usage([one_hour(0.0)], h, h);
    assert!((recent - 2.0 * h / std::f64::consts::LN_2 * 0.5).abs() < 1e-6);
    // The same hour, one half-life older, counts half.
    let older = decayed_usage([one_hour(0.0)], 2.0 * h, h);
    assert!((older - recent / 2.0).abs() < 1e-6);
    // A job still running counts up to now only; nothing before it started.
    assert_eq!(decayed_usage([one_hour(5.0 * h)], h, h), 0.0);
}

#[test]
fn the_queue_in_order_says_why_each_job_waits() {
    let policy = Policy::new(Backfill);
    let waiting = [
        job("head", 4, 1),
        job("fits", 1, 2).remaining(100.0),
        job("long", 2, 3),
        job("huge", 8, 4),
    ];
    let running = [job("r", 2, 0).remaining(1_000.0).since(0.0)];
    let q = explain(&policy, NOW, 2, &waiting, &running);
    let got: Vec<(&str, usize, WaitReason<&str>)> = q
        .into_iter()
        .map(|e| (e.key, e.position, e.reason))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "head",
                1,
                WaitReason::Reserved {
                    at: Some(NOW + 1_000.0)
                }
            ),
            ("fits", 2, WaitReason::Starts),
            ("long", 3, WaitReason::NeedsGpus { need: 2, free: 1 }),
            ("huge", 4, WaitReason::NeedsGpus { need: 8, free: 1 }),
        ]
    );
    assert_eq!(
        WaitReason::<&str>::Reserved {
            at: Some(NOW + 1_000.0)
        }
        .message(NOW),
        "first in line; GPUs reserved from about 17m from now"
    );
    let fifo = explain(&Policy::new(Fifo), NOW, 2, &waiting[..2], &running);
    assert_eq!(fifo[1].reason, WaitReason::Behind { head: "head" });
}

#[test]
fn a_meter_stepping_through_time_agrees_with_the_decayed_sum() {
    use trainctl_core::queue::fair_share::Meter;
    let h = 3_600.0;
    let mut m = Meter::default();
    m.set_gpus(100.0, 2, h);
    m.set_gpus(1_000.0, 3, h);
    m.set_gpus(5_000.0, 0, h);
    let uses = [
        Usage {
            gpus: 2,
            from: 100.0,
            to: 1_000.0,
        },
        Usage {
            gpus: 3,
            from: 1_000.0,
            to: 5_000.0,
        },
    ];
    let now = 9_000.0;
    assert!((m.value_at(now, h) - decayed_usage(uses, now, h)).abs() < 1e-6);
}
