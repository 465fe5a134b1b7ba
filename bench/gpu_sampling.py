#!/usr/bin/env python3
"""Cost of trainctl's GPU tooling, against the targets of its issue, in one run:

1. CPU time of one resource sample per replica (the /proc reads behind `top job` and the
   resource history), for 1, 10 and 50 replicas: target under 1 ms per replica. Side by
   side: following the replicas' process trees (what trainctl does) and scanning all of
   /proc (its fallback where the kernel has no /proc/PID/task/TID/children).
2. Wall time of `trainctl doctor` without --smoke: target under 2 s.

Usage: cargo build --release -p trainctl && python3 bench/gpu_sampling.py [--runs 10]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchutil import loadavg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sampling(samples):
    out = subprocess.run(
        ["cargo", "run", "-q", "--release", "-p", "trainctl-gpu", "--example", "sampling_cost", str(samples)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def doctor(trainctl, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([trainctl, "doctor", "-o", "json"], capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return times


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--trainctl", default=os.path.join(ROOT, "target/release/trainctl"))
    a = p.parse_args()
    print(f"load average: {loadavg()}")
    print("1. sampling cost (CPU time, target < 1 ms per replica per sample)")
    worst = 0.0
    for row in sampling(a.samples):
        per = row["cpu_ms_per_sample_per_replica"]
        scan = row["scan_cpu_ms_per_sample_per_replica"]
        worst = max(worst, per)
        print(f"   {row['replicas']:>3} replicas ({row['processes_on_machine']} processes on the machine): "
              f"process trees {row['cpu_ms_per_sample']:.3f} ms per sample, {per:.4f} ms per replica "
              f"= {per / 1.0:.3f}x the target; full /proc scan {scan:.4f} ms per replica "
              f"(trees / scan = {per / scan:.3f})")
    print(f"   {'PASS' if worst < 1.0 else 'FAIL'}")
    times = doctor(a.trainctl, a.runs)
    median = statistics.median(times)
    print(f"2. trainctl doctor (no --smoke), {a.runs} runs: median {median * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms = {median / 2.0:.3f}x the 2 s target")
    print(f"   {'PASS' if median < 2.0 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
