//! The rows. Kubeflow training-operator v1 status rules, as trainctl applies them: the chief
//! (or master) decides success, else worker 0, or every worker under `AllWorkers`; evaluators
//! never decide; a failure ends the job unless the restart policy retries it (`OnFailure`
//! anything non-zero, `ExitCode` only 128 and up); `backoffLimit` caps restarts over the job;
//! when the job ends, `cleanPodPolicy` `Running` (the default) and `All` stop the replicas
//! still running, `None` leaves them.

use crate::{exits, killed, Scenario};

const CHIEF_PS_WORKERS: &[(&str, u32)] = &[("chief", 1), ("ps", 1), ("worker", 2)];
const PS_WORKERS: &[(&str, u32)] = &[("ps", 1), ("worker", 2)];
const PS_WORKER: &[(&str, u32)] = &[("ps", 1), ("worker", 1)];
const WORKERS: &[(&str, u32)] = &[("worker", 2)];
const WORKER: &[(&str, u32)] = &[("worker", 1)];

const TF: &str = "tensorflow";
const PYTORCH: &str = "pytorch";

const SUCCEEDED: &str = "Succeeded";
const FAILED: &str = "Failed";
const REPLICA_FAILED: &str = "ReplicaFailed";
const BACKOFF_LIMIT_EXCEEDED: &str = "BackoffLimitExceeded";

scenarios! {
    // --- Who decides success --------------------------------------------------------------

    /// The chief decides; the parameter server and the workers still running are stopped.
    ps_is_stopped_when_chief_succeeds {
        framework: TF, shape: CHIEF_PS_WORKERS, run_policy: "{}",
        steps: &[exits("chief-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "chief-0 succeeded",
        restarts: 0, attempts: &[], stopped: &["ps-0", "worker-0", "worker-1"],
    }
    /// With a chief, the workers finishing (worker 0 included) do not end the job.
    workers_finishing_do_not_end_a_chief_job {
        framework: TF, shape: CHIEF_PS_WORKERS, run_policy: "{}",
        steps: &[exits("worker-0", 0, 0), exits("worker-1", 0, 0), exits("chief-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "chief-0 succeeded",
        restarts: 0, attempts: &[], stopped: &["ps-0"],
    }
    /// Without a chief, worker 0 decides and the parameter server is stopped.
    ps_is_stopped_when_worker_0_succeeds {
        framework: TF, shape: PS_WORKERS, run_policy: "{}",
        steps: &[exits("worker-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "worker-0 succeeded",
        restarts: 0, attempts: &[], stopped: &["ps-0", "worker-1"],
    }
    /// Under ChiefOrWorker0, another worker finishing first does not end the job.
    worker_1_succeeding_does_not_end_the_job {
        framework: TF, shape: PS_WORKERS, run_policy: "{successPolicy: ChiefOrWorker0}",
        steps: &[exits("worker-1", 0, 0), exits("worker-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "worker-0 succeeded",
        restarts: 0, attempts: &[], stopped: &["ps-0"],
    }
    /// A PyTorch job's master decides.
    master_decides_a_pytorch_job {
        framework: PYTORCH, shape: &[("master", 1), ("worker", 2)], run_policy: "{}",
        steps: &[exits("master-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "master-0 succeeded",
        restarts: 0, attempts: &[], stopped: &["worker-0", "worker-1"],
    }
    /// A job of workers only ends with worker 0.
    worker_0_decides_a_workers_only_job {
        framework: PYTORCH, shape: &[("worker", 3)], run_policy: "{}",
        steps: &[exits("worker-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "worker-0 succeeded",
        restarts: 0, attempts: &[], stopped: &["worker-1", "worker-2"],
    }
    /// Under AllWorkers the job ends with the last worker, then the parameter server stops.
    all_workers_waits_for_every_worker {
        framework: TF, shape: PS_WORKERS, run_policy: "{successPolicy: AllWorkers}",
        steps: &[exits("worker-0", 0, 0), exits("worker-1", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "all 2 workers succeeded",
        restarts: 0, attempts: &[], stopped: &["ps-0"],
    }
    /// With a chief, AllWorkers does not apply: the chief still decides (and is not stopped
    /// while it writes the final model).
    all_workers_with_a_chief_waits_for_the_chief {
        framework: TF, shape: &[("chief", 1), ("worker", 2)],
        run_policy: "{successPolicy: AllWorkers}",
        steps: &[exits("worker-0", 0, 0), exits("worker-1", 0, 0), exits("chief-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "chief-0 succeeded",
        restarts: 0, attempts: &[], stopped: &[],
    }
    /// An evaluator finishing does not end the job.
    evaluator_does_not_decide {
        framework: TF, shape: &[("chief", 1), ("worker", 1), ("evaluator", 1)],
        run_policy: "{}",
        steps: &[exits("evaluator-0", 0, 0), exits("chief-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "chief-0 succeeded",
        restarts: 0, attempts: &[], stopped: &["worker-0"],
    }
    /// AllWorkers does not wait for the evaluator: it is stopped.
    all_workers_does_not_wait_for_the_evaluator {
        framework: TF, shape: &[("worker", 2), ("evaluator", 1)],
        run_policy: "{successPolicy: AllWorkers}",
        steps: &[exits("worker-1", 0, 0), exits("worker-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "all 2 workers succeeded",
        restarts: 0, attempts: &[], stopped: &["evaluator-0"],
    }

    // --- cleanPodPolicy ------------------------------------------------------------------

    /// cleanPodPolicy None leaves the parameter server and the other workers running.
    clean_pod_policy_none_leaves_the_ps_running {
        framework: TF, shape: PS_WORKERS, run_policy: "{cleanPodPolicy: None}",
        steps: &[exits("worker-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "worker-0 succeeded",
        restarts: 0, attempts: &[], stopped: &[],
    }
    /// cleanPodPolicy None leaves the replicas of a failed job running too.
    clean_pod_policy_none_spares_a_failed_job {
        framework: TF, shape: PS_WORKERS, run_policy: "{cleanPodPolicy: None}",
        steps: &[exits("worker-1", 0, 1)],
        phase: FAILED, reason: REPLICA_FAILED,
        message: "worker-1 exited with code 1 (restartPolicy Never does not retry it)",
        restarts: 0, attempts: &[], stopped: &[],
    }
    /// cleanPodPolicy All stops every replica still running.
    clean_pod_policy_all_stops_every_running_one {
        framework: TF, shape: PS_WORKERS, run_policy: "{cleanPodPolicy: All}",
        steps: &[exits("worker-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "worker-0 succeeded",
        restarts: 0, attempts: &[], stopped: &["ps-0", "worker-1"],
    }
    /// cleanPodPolicy Running stops only what still runs: a finished worker is left as it is.
    clean_pod_policy_running_stops_only_running {
        framework: TF, shape: PS_WORKERS, run_policy: "{cleanPodPolicy: Running}",
        steps: &[exits("worker-1", 0, 0), exits("worker-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "worker-0 succeeded",
        restarts: 0, attempts: &[], stopped: &["ps-0"],
    }

    // --- Failures and restarts -----------------------------------------------------------

    /// A parameter server failing fails the job (restartPolicy Never is the default).
    a_failed_ps_fails_the_job {
        framework: TF, shape: PS_WORKER, run_policy: "{}",
        steps: &[exits("ps-0", 0, 1)],
        phase: FAILED, reason: REPLICA_FAILED,
        message: "ps-0 exited with code 1 (restartPolicy Never does not retry it)",
        restarts: 0, attempts: &[], stopped: &["worker-0"],
    }
    /// Under Never the first failure fails the job and stops the rest.
    never_fails_the_job_on_the_first_failure {
        framework: TF, shape: WORKERS, run_policy: "{restartPolicy: Never}",
        steps: &[exits("worker-1", 0, 4)],
        phase: FAILED, reason: REPLICA_FAILED,
        message: "worker-1 exited with code 4 (restartPolicy Never does not retry it)",
        restarts: 0, attempts: &[], stopped: &["worker-0"],
    }
    /// Under Never a replica killed by a signal is not retried either.
    never_does_not_retry_a_killed_replica {
        framework: TF, shape: WORKERS, run_policy: "{}",
        steps: &[killed("worker-1", 0, 9)],
        phase: FAILED, reason: REPLICA_FAILED,
        message: "worker-1 exited with code 137 (restartPolicy Never does not retry it)",
        restarts: 0, attempts: &[], stopped: &["worker-0"],
    }
    /// ExitCode retries an interrupted replica (130 = SIGINT).
    exit_code_retries_an_interrupted_replica {
        framework: TF, shape: WORKER, run_policy: "{restartPolicy: ExitCode, backoffLimit: 3}",
        steps: &[exits("worker-0", 0, 130), exits("worker-0", 1, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "worker-0 succeeded",
        restarts: 1, attempts: &[("worker-0", 1)], stopped: &[],
    }
    /// ExitCode retries a replica killed by SIGKILL (137, as the OOM killer does).
    exit_code_retries_a_killed_replica {
        framework: TF, shape: WORKER, run_policy: "{restartPolicy: ExitCode}",
        steps: &[killed("worker-0", 0, 9), exits("worker-0", 1, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "worker-0 succeeded",
        restarts: 1, attempts: &[("worker-0", 1)], stopped: &[],
    }
    /// ExitCode retries 128, the lowest retryable code.
    exit_code_retries_exit_128 {
        framework: TF, shape: WORKER, run_policy: "{restartPolicy: ExitCode}",
        steps: &[exits("worker-0", 0, 128), exits("worker-0", 1, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "worker-0 succeeded",
        restarts: 1, attempts: &[("worker-0", 1)], stopped: &[],
    }
    /// ExitCode does not retry exit 1 (a bug in the program): the job fails, the PS stops.
    exit_code_fails_on_exit_1_and_stops_the_ps {
        framework: TF, shape: PS_WORKER, run_policy: "{restartPolicy: ExitCode, backoffLimit: 3}",
        steps: &[exits("worker-0", 0, 1)],
        phase: FAILED, reason: REPLICA_FAILED,
        message: "worker-0 exited with code 1 (restartPolicy ExitCode does not retry it)",
        restarts: 0, attempts: &[], stopped: &["ps-0"],
    }
    /// ExitCode does not retry 127, the highest fatal code.
    exit_code_fails_on_exit_127 {
        framework: TF, shape: WORKER, run_policy: "{restartPolicy: ExitCode}",
        steps: &[exits("worker-0", 0, 127)],
        phase: FAILED, reason: REPLICA_FAILED,
        message: "worker-0 exited with code 127 (restartPolicy ExitCode does not retry it)",
        restarts: 0, attempts: &[], stopped: &[],
    }
    /// OnFailure restarts a failed replica with the next attempt number until it succeeds.
    on_failure_restarts_until_success {
        framework: TF, shape: WORKER, run_policy: "{restartPolicy: OnFailure, backoffLimit: 2}",
        steps: &[exits("worker-0", 0, 3), exits("worker-0", 1, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "worker-0 succeeded",
        restarts: 1, attempts: &[("worker-0", 1)], stopped: &[],
    }
    /// OnFailure restarts a worker that does not decide while the others run; the job ends
    /// with worker 0 and the restarted worker is stopped.
    on_failure_restarts_a_worker_beside_others {
        framework: TF, shape: WORKERS, run_policy: "{restartPolicy: OnFailure, backoffLimit: 4}",
        steps: &[killed("worker-1", 0, 9), exits("worker-1", 1, 2), exits("worker-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "worker-0 succeeded",
        restarts: 2, attempts: &[("worker-1", 2)], stopped: &["worker-1"],
    }
    /// A worker terminated (143) under ExitCode is retried while the chief runs on; the
    /// evaluator does not decide and is stopped at the end.
    exit_code_retries_a_terminated_worker {
        framework: TF, shape: &[("chief", 1), ("worker", 2), ("evaluator", 1)],
        run_policy: "{restartPolicy: ExitCode, backoffLimit: 2}",
        steps: &[exits("worker-0", 0, 143), exits("chief-0", 0, 0)],
        phase: SUCCEEDED, reason: SUCCEEDED, message: "chief-0 succeeded",
        restarts: 1, attempts: &[("worker-0", 1)],
        stopped: &["worker-0", "worker-1", "evaluator-0"],
    }
    /// The failure after backoffLimit restarts fails the job.
    backoff_limit_exceeded_fails_the_job {
        framework: TF, shape: WORKER, run_policy: "{restartPolicy: OnFailure, backoffLimit: 1}",
        steps: &[exits("worker-0", 0, 2), exits("worker-0", 1, 2)],
        phase: FAILED, reason: BACKOFF_LIMIT_EXCEEDED,
        message: "worker-0 exited with code 2 after 1 restarts (backoffLimit 1)",
        restarts: 1, attempts: &[("worker-0", 1)], stopped: &[],
    }
    /// backoffLimit 0 allows no restart, even of a retryable code.
    backoff_limit_zero_allows_no_restart {
        framework: TF, shape: PS_WORKER, run_policy: "{restartPolicy: ExitCode, backoffLimit: 0}",
        steps: &[killed("worker-0", 0, 9)],
        phase: FAILED, reason: BACKOFF_LIMIT_EXCEEDED,
        message: "worker-0 exited with code 137 after 0 restarts (backoffLimit 0)",
        restarts: 0, attempts: &[], stopped: &["ps-0"],
    }

    // --- Deadline ------------------------------------------------------------------------

    /// A job running past activeDeadlineSeconds fails and every replica is stopped.
    the_deadline_fails_a_job_that_runs_too_long {
        framework: TF, shape: PS_WORKER, run_policy: "{activeDeadlineSeconds: 1}",
        steps: &[],
        phase: FAILED, reason: "DeadlineExceeded",
        message: "the job ran longer than activeDeadlineSeconds (1s)",
        restarts: 0, attempts: &[], stopped: &["ps-0", "worker-0"],
    }
}
