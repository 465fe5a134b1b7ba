#!/usr/bin/env python3
"""Launch overhead of `trainctl run` versus a plain shell script.

Both sides start the same 5 processes (1 ps + 4 workers, each running the `true`
binary, which exits at once) and wait for them:

  A  `trainctl run job.yaml` with a fresh TRAINCTL_HOME per iteration
  B  `sh launch.sh`, where launch.sh runs `/usr/bin/true &` five times and `wait`s

A and B are interleaved (A, B, A, B, ...) so drift on the machine hits both alike.
Reports median and p90 wall time of each, the overhead (median A - median B) in ms,
the ratio of medians, and PASS/FAIL against the targets from the issue (overhead
< 50 ms, ratio < 1.5). The exit status is 0 whatever the numbers are; it is
non-zero only when something errors (a run fails, the binary is missing).

For the trainctl side it also reads the job's timestamps from the state database
(stdlib sqlite3, read-only) to split the wall time into phases, so a regression can
be pinned to a phase. That part is best effort: if the schema changes it is skipped.

Standard library only. Run from anywhere:

    cargo build --release -p trainctl
    python3 bench/launch_overhead.py [--iterations 30] [--trainctl PATH]
"""

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

from benchutil import loadavg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_OVERHEAD_MS = 50.0
TARGET_RATIO = 1.5
ROLES = (("ps", 1), ("worker", 4))


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def snapshot_binary(path, workdir):
    """Copies the trainctl binary so a concurrent `cargo build` cannot swap it mid-run."""
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        sys.exit(
            f"error: {path} is not an executable; build it with "
            "`cargo build --release -p trainctl` or pass --trainctl"
        )
    copy = os.path.join(workdir, "trainctl")
    shutil.copy2(path, copy)
    return copy


def timed(argv, env, cwd):
    """Runs argv; returns (wall seconds, user+sys CPU seconds of it and its children,
    unix time at spawn, stderr text). Raises on a non-zero exit."""
    t_unix = time.time()
    t0 = time.perf_counter()
    p = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    p.stderr.close()
    if p.returncode != 0:
        raise RuntimeError(
            f"{argv[0]} exited with {p.returncode}:\n{err.decode(errors='replace')}"
        )
    return wall, ru.ru_utime + ru.ru_stime, t_unix, err.decode(errors="replace")


def phases(db_path, job, t_spawn, t_exit):
    """Phase durations (ms) of one trainctl run from its state database, or None."""
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            created, finished = con.execute(
                "SELECT created, finished FROM jobs WHERE name = ?", (job,)
            ).fetchone()
            rows = con.execute(
                "SELECT started, finished FROM attempts WHERE job = ?", (job,)
            ).fetchall()
        finally:
            con.close()
        starts = [r[0] for r in rows]
        ends = [r[1] for r in rows if r[1] is not None]
        if not starts or not ends or finished is None:
            return None
        ms = lambda a, b: (b - a) * 1000.0
        # The job can be marked finished before the last replica is reaped (worker-0's
        # exit decides a ps job), so teardown starts at whichever came last.
        last = max(max(ends), finished)
        return {
            "startup: exec, parse, open db, create job": ms(t_spawn, created),
            "created -> first replica spawned": ms(created, min(starts)),
            "first -> last replica spawned": ms(min(starts), max(starts)),
            "last spawn -> last replica exit recorded": ms(max(starts), max(ends)),
            "teardown: -> trainctl exited": ms(last, t_exit),
        }
    except Exception:  # best effort only: schema may differ
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=30, help="pairs of runs (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed pairs first (default 3)")
    ap.add_argument(
        "--trainctl", default=os.path.join(REPO, "target", "release", "trainctl"),
        help="binary to measure (default: target/release/trainctl of this repo)",
    )
    ap.add_argument(
        "--shared-home", action="store_true",
        help="use one TRAINCTL_HOME for every iteration (unique job names) instead of a "
        "fresh one per run; shows how the cost grows with the number of stored jobs",
    )
    args = ap.parse_args()
    if args.iterations < 1:
        ap.error("--iterations must be at least 1")

    true_bin = shutil.which("true")
    if not true_bin:
        sys.exit("error: no `true` binary on PATH")
    true_bin = os.path.realpath(true_bin)
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    work = tempfile.mkdtemp(prefix="trainctl-bench-launch-")
    try:
        binary = snapshot_binary(os.path.abspath(args.trainctl), work)
        script = os.path.join(work, "launch.sh")
        n_procs = sum(c for _, c in ROLES)
        with open(script, "w") as f:
            f.write("#!/bin/sh\n")
            for _ in range(n_procs):
                f.write(f"{true_bin} &\n")
            f.write("wait\n")
        sh = shutil.which("sh") or "/bin/sh"

        env = dict(os.environ)
        env.pop("TRAINCTL_HOME", None)
        gpu_note = (
            f"TRAINCTL_GPUS={env['TRAINCTL_GPUS']!r}" if "TRAINCTL_GPUS" in env
            else "TRAINCTL_GPUS unset, nvidia-smi "
            + ("found: trainctl runs it (twice per `run`)" if shutil.which("nvidia-smi")
               else "not on PATH")
        )

        print("trainctl launch overhead: `trainctl run` (1 ps + 4 workers) vs a shell script")
        print(f"  machine:    {nproc} cores ({os.cpu_count()} online), {platform.platform()}")
        print(f"  binary:     {os.path.abspath(args.trainctl)} "
              f"(built {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(os.path.getmtime(binary)))}, "
              "run from a copy)")
        print(f"  replicas:   {true_bin} x {n_procs}; shell: {sh} launch.sh")
        print(f"  home:       {'one shared TRAINCTL_HOME' if args.shared_home else 'fresh TRAINCTL_HOME per run'}; {gpu_note}")
        print(f"  iterations: {args.iterations} interleaved pairs after {args.warmup} warm-up pairs")
        print(f"  load avg:   {loadavg()} (before)")
        print(flush=True)

        a_wall, b_wall, a_cpu, b_cpu, a_phases = [], [], [], [], []
        total = args.warmup + args.iterations
        for i in range(total):
            measured = i >= args.warmup
            name = f"bench-launch-{i}"
            home = os.path.join(work, "home" if args.shared_home else f"home-{i}")
            jobfile = os.path.join(work, f"job-{i}.yaml")
            with open(jobfile, "w") as f:
                f.write(
                    "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\n"
                    f"metadata: {{name: {name}}}\nspec:\n  framework: tensorflow\n"
                    f"  command: [\"{true_bin}\"]\n  replicas:\n"
                )
                for role, count in ROLES:
                    f.write(f"    {role}: {{count: {count}}}\n")
            run_env = dict(env, TRAINCTL_HOME=home)

            wall, cpu, t_spawn, _ = timed([binary, "run", jobfile], run_env, work)
            t_exit = t_spawn + wall
            if measured:
                a_wall.append(wall)
                a_cpu.append(cpu)
                ph = phases(os.path.join(home, "state.db"), name, t_spawn, t_exit)
                if ph:
                    a_phases.append(ph)
            if not args.shared_home:
                shutil.rmtree(home, ignore_errors=True)
            os.unlink(jobfile)

            wall, cpu, _, _ = timed([sh, script], env, work)
            if measured:
                b_wall.append(wall)
                b_cpu.append(cpu)
            if measured:
                print(f"  run {len(a_wall):>3}: trainctl {a_wall[-1] * 1e3:7.1f} ms   "
                      f"shell {b_wall[-1] * 1e3:6.1f} ms", flush=True)

        med_a, med_b = statistics.median(a_wall), statistics.median(b_wall)
        overhead_ms = (med_a - med_b) * 1e3
        ratio = med_a / med_b if med_b > 0 else float("inf")

        print()
        print(f"results over {args.iterations} iterations ({nproc} cores):")
        print(f"  {'':10} {'median':>10} {'p90':>10} {'min':>10} {'max':>10} {'CPU med':>10}")
        for label, w, c in (("trainctl", a_wall, a_cpu), ("shell", b_wall, b_cpu)):
            print(f"  {label:10} {statistics.median(w) * 1e3:8.1f}ms {percentile(w, 90) * 1e3:8.1f}ms "
                  f"{min(w) * 1e3:8.1f}ms {max(w) * 1e3:8.1f}ms {statistics.median(c) * 1e3:8.1f}ms")
        print(f"  overhead (median trainctl - median shell): {overhead_ms:.1f} ms")
        print(f"  ratio of medians (trainctl / shell):        {ratio:.2f}x")
        if a_phases:
            print(f"  trainctl phases (median ms over {len(a_phases)} runs, from the state db):")
            for key in a_phases[0]:
                print(f"    {key:40} {statistics.median(p[key] for p in a_phases):7.1f}")
        ok_overhead = overhead_ms < TARGET_OVERHEAD_MS
        ok_ratio = ratio < TARGET_RATIO
        print(f"  target overhead < {TARGET_OVERHEAD_MS:.0f} ms: "
              f"{'PASS' if ok_overhead else 'FAIL'} ({overhead_ms:.1f} ms)")
        print(f"  target ratio    < {TARGET_RATIO}:   "
              f"{'PASS' if ok_ratio else 'FAIL'} ({ratio:.2f}x)")
        print(f"  overall: {'PASS' if ok_overhead and ok_ratio else 'FAIL'} "
              "(a measurement: exit status is 0 either way)")
        print(f"  load avg after: {loadavg()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
