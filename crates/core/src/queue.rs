//! The gang queue: which waiting jobs may take the free GPUs now. A job starts whole or not
//! at all; jobs are served by priority (higher first), then in arrival order, and a job that
//! does not fit blocks the ones behind it so that large jobs are not starved.

/// A job waiting for GPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob<K> {
    /// The engine's key for the job.
    pub key: K,
    /// GPUs the job needs at once.
    pub gpus: u32,
    /// Higher is served first.
    pub priority: i32,
    /// Arrival order.
    pub seq: u64,
}

/// The keys of the jobs to admit now, given `free` GPUs, in the order they are admitted.
pub fn admit<K: Clone>(waiting: &[QueuedJob<K>], mut free: u32) -> Vec<K> {
    let mut order: Vec<&QueuedJob<K>> = waiting.iter().collect();
    order.sort_by_key(|j| (std::cmp::Reverse(j.priority), j.seq));
    let mut admitted = Vec::new();
    for job in order {
        if job.gpus > free {
            break;
        }
        free -= job.gpus;
        admitted.push(job.key.clone());
    }
    admitted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(key: &'static str, gpus: u32, priority: i32, seq: u64) -> QueuedJob<&'static str> {
        QueuedJob {
            key,
            gpus,
            priority,
            seq,
        }
    }

    #[test]
    fn admits_in_priority_then_arrival_order_and_blocks_behind_a_big_job() {
        let q = [
            job("a", 1, 0, 1),
            job("b", 4, 0, 2),
            job("c", 1, 0, 3),
            job("hi", 2, 5, 9),
        ];
        assert_eq!(admit(&q, 3), vec!["hi", "a"]);
        assert_eq!(admit(&q, 8), vec!["hi", "a", "b", "c"]);
        assert_eq!(admit(&q, 1), Vec::<&str>::new());
    }
}
