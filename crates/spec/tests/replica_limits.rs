//! Replica counts are bounded (`MAX_REPLICAS` per role and per job), and a count above the
//! bound is refused by parsing and validation alone, without any allocation that grows with
//! the count: this test binary's allocator records the largest single allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use trainctl_spec::{parse_job_str, MAX_REPLICAS};

/// The system allocator, noting the largest request of each thread.
struct Recording;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

fn job(replicas: &str) -> String {
    format!(
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: j\nspec:\n  \
         command: [python3, train.py]\n  replicas:\n{replicas}"
    )
}

/// The errors of `text` as the user reads them, with the largest allocation made on the way.
fn refused(text: &str) -> (Vec<String>, usize) {
    LARGEST.with(|l| l.set(0));
    let result = parse_job_str("job.yaml", text);
    let largest = LARGEST.with(Cell::get);
    let errors = result
        .expect_err("the job should be refused")
        .iter()
        .map(ToString::to_string)
        .collect();
    (errors, largest)
}

#[test]
fn replica_count_above_the_limit_is_refused_before_allocating() {
    let started = std::time::Instant::now();
    let (errors, largest) = refused(&job("    worker: {count: 1000000000}\n"));
    assert_eq!(
        errors,
        [format!(
            "job.yaml:8:14: spec.replicas.worker.count: 1000000000 replicas is more than a job \
             may have: use at most {MAX_REPLICAS} per role and {MAX_REPLICAS} in all"
        )]
    );
    // Nothing near 10^9 of anything: a few kilobytes of YAML bookkeeping at most.
    assert!(largest < 64 * 1024, "largest allocation {largest} bytes");
    assert!(
        started.elapsed().as_secs() < 2,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn the_largest_count_a_role_may_have_is_accepted() {
    let text = job(&format!("    worker: {{count: {MAX_REPLICAS}}}\n"));
    let parsed = parse_job_str("job.yaml", &text).expect("the limit itself is allowed");
    assert_eq!(parsed.spec.replicas.total(), MAX_REPLICAS);
}

#[test]
fn roles_that_together_pass_the_limit_are_refused_at_spec_replicas() {
    let half = MAX_REPLICAS / 2 + 1;
    let (errors, _) = refused(&job(&format!(
        "    ps: {{count: {half}}}\n    worker: {{count: {half}}}\n"
    )));
    assert_eq!(
        errors,
        [format!(
            "job.yaml:7:3: spec.replicas: the job has {} replicas (ps {half}, worker {half}); \
             a job may have at most {MAX_REPLICAS} in all",
            2 * half
        )]
    );
}

#[test]
fn counts_whose_sum_overflows_are_refused_not_a_panic() {
    let (errors, largest) = refused(&job(
        "    ps: {count: 4294967295}\n    worker: {count: 4294967295}\n",
    ));
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("job.yaml:8:10: spec.replicas.ps.count: 4294967295 replicas"));
    assert!(errors[1].starts_with("job.yaml:9:14: spec.replicas.worker.count: 4294967295"));
    assert!(largest < 64 * 1024, "largest allocation {largest} bytes");
}

#[test]
fn a_count_beyond_u32_says_what_is_allowed() {
    let (errors, _) = refused(&job("    worker: {count: 5000000000}\n"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("job.yaml:8:21: spec.replicas.worker.count: ")
            && errors[0].ends_with(&format!("use a whole number from 0 to {MAX_REPLICAS}")),
        "{errors:?}"
    );
}
