#!/usr/bin/env python3
"""Chaos benchmark: how much training survives faults when replicas checkpoint.

One job of --replicas workers, each running bench/chaos_trainer.py (a deterministic trainer
of --steps steps) under `trainctl submit`, three times:

  a  undisturbed, checkpoint every --checkpoint-every steps
  b  the same, with `kill -9` of a random running replica at seeded random times: on
     average one kill per 10 checkpoint intervals of wall time (intervals measured in run a),
     the kill times and victims drawn from --seed
  c  the faults of b (same times and victims), with checkpoints switched off: a killed
     replica starts again from step 0

b and c also lose the job's supervisor (`trainctl supervise`, kill -9; its replicas die with
it) halfway through run a's wall time, and are resumed with `trainctl resume` once the job
shows Suspended (reason SupervisorLost); the supervisor counts as one of the kills
(--no-supervisor-kill leaves it out).

The job restarts killed replicas (restartPolicy OnFailure; the restart backoff is set to
--backoff seconds so the wall time shows the lost work rather than the waiting).

Reported per run: goodput (useful steps / steps executed; useful = steps x replicas,
executed = every `step:` line of every attempt), wall time, kills, restarts and final
accuracy (mean over the replicas), then the ratios to run a. Targets (issue 15): every
disturbed run completes; goodput >= 0.9 in b; accuracy of b within 1 point of a.
Exit status 0 whatever the numbers; 1 when a run does not complete.

    python3 bench/chaos.py [--trainctl target/debug/trainctl] [--steps 2000] [--seed 15] [--no-supervisor-kill]
"""

import argparse
import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchutil import loadavg

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
JOB = "chaos"


class Trainctl:
    """The trainctl binary (a copy, so a concurrent build cannot swap it) and a home."""

    def __init__(self, binary, home, backoff):
        self.binary, self.home = binary, home
        self.env = dict(os.environ, TRAINCTL_HOME=home, TRAINCTL_GPUS="",
                        TRAINCTL_RESTART_BACKOFF_SECONDS=str(backoff))

    def __call__(self, *args, check=True):
        out = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True)
        if check and out.returncode != 0:
            raise RuntimeError(f"trainctl {' '.join(args)}: {out.stderr.strip()}")
        return out

    def status(self):
        return json.loads(self("get", JOB, "-o", "json").stdout)["status"]


def job_file(workdir, args, checkpoint_every):
    text = f"""apiVersion: trainctl.dev/v1alpha1
kind: TrainingJob
metadata: {{name: {JOB}}}
spec:
  command: [python3, {os.path.join(HERE, 'chaos_trainer.py')}]
  hyperparameters: {{steps: {args.steps}, checkpoint_every: {checkpoint_every}, seed: {args.seed}}}
  replicas:
    worker: {{count: {args.replicas}}}
  runPolicy:
    restartPolicy: OnFailure
    backoffLimit: 1000
    successPolicy: AllWorkers
"""
    path = os.path.join(workdir, f"chaos-{checkpoint_every}.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def kill_schedule(seed, mean_gap, horizon):
    """Seeded (time, pick) pairs: exponential gaps of mean `mean_gap` up to `horizon` s."""
    rng = random.Random(seed)
    t, out = 0.0, []
    while True:
        t += rng.expovariate(1.0 / mean_gap)
        if t > horizon:
            return out
        out.append((t, rng.random()))


def supervisor_pid(home):
    """The pid of `trainctl supervise chaos` of this home, or None."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if argv[1:3] == [b"supervise", JOB.encode()] and f"TRAINCTL_HOME={home}".encode() in env:
            return int(entry)
    return None


def run(tc, file, schedule, supervisor_at=None):
    """Submits the job, applies the kills (and the supervisor kill at `supervisor_at` s,
    followed by `trainctl resume` once the job shows it lost its supervisor), waits for the
    end. Returns (phase, wall, kills)."""
    start = time.monotonic()
    tc("submit", file)
    kills, pending = 0, list(schedule)
    while True:
        status = tc.status()
        if status["phase"] == "Suspended" and status.get("reason") == "SupervisorLost":
            tc("resume", JOB)
            continue
        if status["phase"] in ("Succeeded", "Failed"):
            return status["phase"], time.monotonic() - start, kills
        now = time.monotonic() - start
        if supervisor_at is not None and now >= supervisor_at:
            pid = supervisor_pid(tc.home)
            if pid:
                os.kill(pid, signal.SIGKILL)
                kills += 1
                supervisor_at = None
        if pending and now >= pending[0][0]:
            _, pick = pending.pop(0)
            running = [r for r in status["replicas"] if r["state"] == "Running" and r.get("pid")]
            if running:
                victim = running[int(pick * len(running))]
                try:
                    os.kill(victim["pid"], signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
        time.sleep(0.02)


def account(home, replicas, steps):
    """(executed steps, mean final accuracy) from the attempt logs."""
    executed, accuracies = 0, []
    for i in range(replicas):
        logs = sorted(glob.glob(os.path.join(home, "jobs", JOB, "logs", f"worker-{i}", "attempt-*.log")))
        last = ""
        for log in logs:
            with open(log, errors="replace") as f:
                text = f.read()
            executed += len(re.findall(r"^step: \d+$", text, re.M))
            last = text
        found = re.findall(r"^accuracy=([0-9.]+)$", last, re.M)
        accuracies.append(float(found[-1]) if found else float("nan"))
    return executed, sum(accuracies) / len(accuracies)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trainctl", default=os.path.join(REPO, "target", "debug", "trainctl"))
    p.add_argument("--replicas", type=int, default=4)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--checkpoint-every", type=int, default=25)
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--backoff", type=float, default=0.2)
    p.add_argument("--no-supervisor-kill", dest="supervisor_kill", action="store_false",
                   help="leave out the supervisor kill (and resume) of b and c")
    args = p.parse_args()
    if not os.access(args.trainctl, os.X_OK):
        sys.exit(f"error: {args.trainctl} is not an executable; `cargo build -p trainctl` or pass --trainctl")
    work = tempfile.mkdtemp(prefix="trainctl-chaos-")
    binary = os.path.join(work, "trainctl")
    shutil.copy2(args.trainctl, binary)
    print(f"chaos: {args.replicas} replicas x {args.steps} steps, checkpoint every "
          f"{args.checkpoint_every}, seed {args.seed}, load {loadavg()}", flush=True)

    results = {}
    schedule = []
    for name, ckpt, faults in (("a", args.checkpoint_every, False),
                               ("b", args.checkpoint_every, True),
                               ("c", 0, True)):
        home = os.path.join(work, f"home-{name}")
        tc = Trainctl(binary, home, args.backoff)
        if faults and not schedule:
            interval = results["a"]["wall"] * args.checkpoint_every / args.steps
            # Faults keep coming for as long as a disturbed run could last.
            schedule = kill_schedule(args.seed, 10 * interval, 3 * results["a"]["wall"])
        supervisor_at = results["a"]["wall"] / 2 if faults and args.supervisor_kill else None
        phase, wall, kills = run(
            tc, job_file(work, args, ckpt), schedule if faults else [], supervisor_at
        )
        executed, acc = account(home, args.replicas, args.steps)
        restarts = tc.status().get("restarts", 0)
        useful = args.steps * args.replicas
        results[name] = dict(phase=phase, wall=wall, kills=kills, restarts=restarts,
                             goodput=useful / executed if executed else 0.0, accuracy=acc)
        r = results[name]
        print(f"{name}: {phase:9s} wall {wall:6.1f}s  kills {kills}  restarts {restarts}  "
              f"executed {executed}  goodput {r['goodput']:.3f}  accuracy {acc:.4f}", flush=True)

    a, b, c = results["a"], results["b"], results["c"]
    print(f"kills drawn for b and c: {len(schedule)} over {schedule[-1][0] if schedule else 0:.0f}s "
          f"(one per {10 * args.checkpoint_every} steps of run a); applied while the run lasted")
    print(f"ratios to a: wall b {b['wall'] / a['wall']:.2f}x, c {c['wall'] / a['wall']:.2f}x; "
          f"goodput b {b['goodput']:.3f}, c {c['goodput']:.3f}")
    complete = all(r["phase"] == "Succeeded" for r in results.values())
    print(f"every disturbed run completes: {'PASS' if complete else 'FAIL'}")
    print(f"goodput of b >= 0.9: {'PASS' if b['goodput'] >= 0.9 else 'FAIL'} ({b['goodput']:.3f})")
    gap = abs(b["accuracy"] - a["accuracy"]) * 100
    print(f"accuracy of b within 1 point of a: {'PASS' if gap <= 1 else 'FAIL'} ({gap:.2f} points)")
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if complete else 1)


if __name__ == "__main__":
    main()
