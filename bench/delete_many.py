#!/usr/bin/env python3
"""`trainctl delete` of a finished job with many replicas (10,000 by default): two binaries
side by side, say the one before a change (--old) and after it (--new).

The finished job is made once, for real, by the old binary: `submit` of a job whose
replicas run `true`, then `wait`. Each trial copies that state directory afresh and times `delete JOB` with one
binary; trials alternate old, new, old, new, ... so load on the machine hits both alike.
A trial also waits until the job's files are gone from the disk (a newer trainctl unlinks
them in the background after `delete` returns), so no trial pays for the one before.
Prints each side's median and the ratio old/new. Exit status 0 whatever the numbers are;
1 when a command fails or a delete leaves the job behind.

Standard library only:

    python3 bench/delete_many.py --old OLD_TRAINCTL --new NEW_TRAINCTL [--replicas 10000] [--repeat 3]
    # --template DIR: a state directory holding the finished job already (it is only copied)
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchutil import loadavg

JOB = "many"


def snapshot(path, workdir, name):
    """Copies a binary so a concurrent `cargo build` cannot swap it mid-run."""
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        sys.exit(f"error: {path} is not an executable")
    copy = os.path.join(workdir, name)
    shutil.copy2(path, copy)
    return copy


def trainctl(binary, home, *args, check=True):
    env = dict(os.environ, TRAINCTL_HOME=home, TRAINCTL_GPUS="")
    out = subprocess.run([binary, *args], env=env, capture_output=True, text=True)
    if check and out.returncode != 0:
        sys.exit(f"error: trainctl {' '.join(args)} failed ({out.returncode}): {out.stderr}")
    return out


def make_finished_job(binary, workdir, replicas):
    """A state directory holding one finished job of `replicas` workers."""
    home = os.path.join(workdir, "template")
    job = os.path.join(workdir, "job.yaml")
    with open(job, "w") as f:
        f.write(
            "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\n"
            f"metadata: {{name: {JOB}}}\nspec:\n  command: [\"true\"]\n"
            f"  replicas: {{worker: {{count: {replicas}}}}}\n"
            "  runPolicy: {successPolicy: AllWorkers}\n"
        )
    start = time.monotonic()
    trainctl(binary, home, "submit", job)
    out = trainctl(binary, home, "wait", JOB, "--timeout", "30m", check=False)
    if out.returncode != 0:
        sys.exit(f"error: the {replicas}-replica job did not succeed: {out.stdout}{out.stderr}")
    print(f"made a finished {replicas}-replica job in {time.monotonic() - start:.1f} s")
    return home


def files_left(home):
    """How many files and directories of deleted jobs are still on the disk."""
    n = 0
    for sub in ("jobs", "trash"):
        for _, dirs, files in os.walk(os.path.join(home, sub)):
            n += len(dirs) + len(files)
    return n


def trial(binary, template, workdir):
    """Seconds until `delete` of a fresh copy of the finished job returns, and until its
    files are gone."""
    home = os.path.join(workdir, "trial")
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(template, home, symlinks=True)
    start = time.monotonic()
    trainctl(binary, home, "delete", JOB)
    took = time.monotonic() - start
    while files_left(home) > 0:
        if time.monotonic() - start > 600:
            sys.exit("error: the deleted job's files were still there after 10 minutes")
        time.sleep(0.05)
    gone = time.monotonic() - start
    if os.path.exists(os.path.join(home, "jobs", JOB)):
        sys.exit("error: delete left the job's files behind")
    if trainctl(binary, home, "get", JOB, check=False).returncode == 0:
        sys.exit("error: delete left the job's record behind")
    return took, gone


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="trainctl before the change")
    p.add_argument("--new", required=True, help="trainctl after the change")
    p.add_argument("--replicas", type=int, default=10000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--template", help="a state directory with the finished job already")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="trainctl-delete-") as workdir:
        old = snapshot(a.old, workdir, "old")
        new = snapshot(a.new, workdir, "new")
        template = a.template or make_finished_job(old, workdir, a.replicas)
        times = {"old": [], "new": []}
        gone = {"old": [], "new": []}
        for i in range(a.repeat):
            for side, binary in (("old", old), ("new", new)):
                took, left = trial(binary, template, workdir)
                times[side].append(took)
                gone[side].append(left)
                print(f"  {side} #{i + 1}: {took:.3f} s, files gone after {left:.3f} s", flush=True)
        old_med = statistics.median(times["old"])
        new_med = statistics.median(times["new"])
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {loadavg()}")
        print(f"delete of a finished {a.replicas}-replica job, median of {a.repeat}:")
        print(f"  old {old_med:.3f} s   new {new_med:.3f} s   ratio old/new {old_med / new_med:.1f}x")
        print(
            f"  files gone after: old {statistics.median(gone['old']):.3f} s"
            f"   new {statistics.median(gone['new']):.3f} s"
        )


if __name__ == "__main__":
    main()
