#!/usr/bin/env python3
"""Log throughput of `trainctl run` versus writing straight to a file.

One replica writes --mib MiB (default 1024) of numbered 100-byte lines to stdout as
fast as it can (a Python writer that stamps line numbers into a pre-built 1 MB block
with one bytes.replace per block, so it is not the bottleneck):

  A  `trainctl run job.yaml > stream.out` (1 worker, no ps): trainctl puts the
     replica's output in its attempt log and streams it, prefixed `[worker-0] `, to
     its own stdout, which goes to a file
  B  the same writer with its stdout redirected straight to a file

A and B are interleaved (--repeat pairs, default 3, after --warmup untimed pairs,
default 1; with --devnull a third run per round, C, times `trainctl run > /dev/null`
to separate the cost of writing trainctl's stdout). Reports MiB/s of each (payload
bytes / wall time of the whole command) and the ratio A/B (target >= 0.8). Then
checks that no line was lost, duplicated or reordered, in constant memory:
  * the attempt log ($TRAINCTL_HOME/jobs/<job>/logs/worker-0/attempt-0.log) must be
    exactly the writer's output, and
  * trainctl's stdout must hold every numbered line, prefixed `[worker-0] `, exactly
    once and in order (other lines are counted and reported, not fatal).
The check first compares against the regenerated expected stream chunk by chunk
(fast); only on a mismatch does it walk the file line by line to say what went wrong.
Every big file is deleted after its run.

Exit status: 0 whatever the speed; 1 when a run fails or a check finds lost or
reordered lines. Standard library only. Needs about 2.2 x --mib of free space in the
temp dir (default: $TMPDIR or /tmp; --tmpdir to change).

    cargo build --release -p trainctl
    python3 bench/log_throughput.py [--mib 1024] [--repeat 3] [--trainctl PATH]
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
TARGET_RATIO = 0.8
MIB = 1024 * 1024

# The line format, shared by the writer and the checker: line n (from 0) is
#   "%012d " % n + FILL + "\n"   = 100 bytes
# (after an optional prefix such as "[worker-0] " in trainctl's stream). Lines are
# made in blocks of BLOCK: the low 4 digits are baked into a template, the high 8 are
# the block number, stamped into the reused buffer column by column with strided
# memoryview assignments (only the digits that changed), so making 1 GiB costs little
# CPU next to writing it. The same source runs in the writer process and the checker.
LINE_BYTES = 100
GEN_SRC = r'''
BLOCK = 10000
FILL = (b"abcdefghijklmnopqrstuvwxyz" * 4)[:86]

def blocks(lines, prefix=b""):
    """Yields the stream, a reused memoryview per block of BLOCK lines."""
    per = len(prefix) + 12 + 1 + len(FILL) + 1
    buf = bytearray(b"".join(prefix + b"00000000%04d " % i + FILL + b"\n"
                             for i in range(BLOCK)))
    view = memoryview(buf)
    cols = {c: bytes([c]) * BLOCK for c in b"0123456789"}
    shown = b"00000000"
    left, hi = lines, 0
    while left > 0:
        digits = b"%08d" % hi
        for d in range(8):
            if digits[d] != shown[d]:
                view[len(prefix) + d::per] = cols[digits[d]]
        shown = digits
        n = min(left, BLOCK)
        yield view[: n * per]
        left -= n
        hi += 1
'''
exec(GEN_SRC)

WRITER_SRC = GEN_SRC + r'''
import os, sys
for chunk in blocks(int(sys.argv[1])):
    while chunk:
        chunk = chunk[os.write(1, chunk):]
'''


def fast_equal(path, lines, prefix):
    """True when the file is exactly the expected stream (constant memory)."""
    with open(path, "rb", buffering=0) as f:
        for want in blocks(lines, prefix):
            got = f.read(len(want))
            while len(got) < len(want):
                more = f.read(len(want) - len(got))
                if not more:
                    break
                got += more
            if got != want:
                return False
        return f.read(1) == b""


def diagnose(path, lines, prefix, show=5):
    """Walks the file line by line: every numbered line exactly once, in order, intact.
    Returns (ok, report text). Constant memory."""
    plen = len(prefix)
    nxt = 0
    missing = dup_or_back = corrupt = other = 0
    notes = []
    with open(path, "rb", buffering=1 << 20) as f:
        for lineno, raw in enumerate(f, 1):
            if plen and not raw.startswith(prefix):
                other += 1
                if len(notes) < show:
                    notes.append(f"line {lineno}: not from {prefix.decode()!r}: {raw[:60]!r}")
                continue
            body = raw[plen:]
            try:
                n = int(body[:12])
            except ValueError:
                n = None
            if n is None or body != b"%012d " % n + FILL + b"\n":
                corrupt += 1
                if len(notes) < show:
                    notes.append(f"line {lineno}: corrupt or mixed: {raw[:60]!r}")
                continue
            if n == nxt:
                nxt += 1
            elif n > nxt:
                missing += n - nxt
                if len(notes) < show:
                    notes.append(f"line {lineno}: numbered line {n}, expected {nxt} "
                                 f"({n - nxt} lost)")
                nxt = n + 1
            else:
                dup_or_back += 1
                if len(notes) < show:
                    notes.append(f"line {lineno}: numbered line {n} again/out of order "
                                 f"(expected {nxt})")
    if nxt < lines:
        missing += lines - nxt
        notes.append(f"end of file: lines {nxt}..{lines - 1} never appeared")
    elif nxt > lines:
        corrupt += nxt - lines
        notes.append(f"lines past the last one written ({nxt - lines})")
    ok = missing == 0 and dup_or_back == 0 and corrupt == 0
    report = (f"lost {missing}, duplicated/reordered {dup_or_back}, corrupt {corrupt}, "
              f"other lines {other}")
    return ok, "\n".join([report] + ["    " + n for n in notes])


def check(path, lines, prefix):
    """(ok, how): fast exact comparison, or a line-by-line diagnosis on mismatch."""
    t = time.perf_counter()
    if fast_equal(path, lines, prefix):
        return True, f"exact match, {lines} lines in order ({time.perf_counter() - t:.1f}s)"
    ok, report = diagnose(path, lines, prefix)
    return ok, ("not byte-identical; line walk: " + report)


def run_timed(argv, env, cwd, stdout_path):
    """Runs argv with stdout to a file; returns (wall s, CPU s incl. children, unix start)."""
    with open(stdout_path, "wb") as out:
        t_unix = time.time()
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=subprocess.PIPE)
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {p.returncode}:\n"
                           f"{err.decode(errors='replace')}")
    return wall, ru.ru_utime + ru.ru_stime, t_unix


def attempt_times(home, job):
    """(started, finished) of worker-0's attempt 0 from the state db, or None."""
    try:
        con = sqlite3.connect(f"file:{os.path.join(home, 'state.db')}?mode=ro", uri=True)
        try:
            return con.execute(
                "SELECT started, finished FROM attempts WHERE job = ? AND replica = "
                "'worker-0' AND attempt = 0", (job,)).fetchone()
        finally:
            con.close()
    except Exception:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=1024, help="MiB the replica writes (default 1024)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved A/B pairs (default 3)")
    ap.add_argument("--trainctl", default=os.path.join(REPO, "target", "release", "trainctl"),
                    help="binary to measure (default: target/release/trainctl of this repo)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed A/B pairs first (default 1): the first GiB written after "
                    "boot is slow on some VMs")
    ap.add_argument("--devnull", action="store_true",
                    help="also time `trainctl run > /dev/null` (C) each round, to separate "
                    "the cost of writing trainctl's stdout from reading the attempt log")
    ap.add_argument("--tmpdir", default=None, help="where the big files go (default: TMPDIR or /tmp)")
    args = ap.parse_args()
    if args.mib < 1 or args.repeat < 1 or args.warmup < 0:
        ap.error("--mib and --repeat must be at least 1, --warmup at least 0")

    lines = args.mib * MIB // LINE_BYTES
    payload = lines * LINE_BYTES
    prefix = b"[worker-0] "
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    trainctl = os.path.abspath(args.trainctl)
    if not (os.path.isfile(trainctl) and os.access(trainctl, os.X_OK)):
        sys.exit(f"error: {trainctl} is not an executable; build it with "
                 "`cargo build --release -p trainctl` or pass --trainctl")

    work = tempfile.mkdtemp(prefix="trainctl-bench-logs-", dir=args.tmpdir)
    failures = 0
    try:
        need = int(payload * 2.2) + 64 * MIB
        free = shutil.disk_usage(work).free
        if free < need:
            raise RuntimeError(f"{work}: {free / MIB:.0f} MiB free, need about {need / MIB:.0f} MiB")
        binary = os.path.join(work, "trainctl")
        shutil.copy2(trainctl, binary)  # a concurrent cargo build cannot swap it mid-run
        writer = os.path.join(work, "writer.py")
        with open(writer, "w") as f:
            f.write(WRITER_SRC)
        py = sys.executable
        env = dict(os.environ)
        env.pop("TRAINCTL_HOME", None)

        print("trainctl log throughput: `trainctl run > file` vs writer > file")
        print(f"  machine:  {nproc} cores ({os.cpu_count()} online), {platform.platform()}")
        print(f"  binary:   {trainctl} (built "
              f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(os.path.getmtime(trainctl)))}, "
              "run from a copy)")
        print(f"  payload:  {lines} numbered lines x {LINE_BYTES} B = {payload / MIB:.1f} MiB "
              f"per run, writer: {py} writer.py")
        print(f"  files in: {work} ({free / (1024 * MIB):.1f} GiB free)")
        print(f"  load avg: {loadavg()} (before)")
        print(flush=True)

        a_rate, b_rate, a_cpu, b_cpu, drain, inside, c_rate = [], [], [], [], [], [], []

        def via_trainctl(tag, stdout_path, verify):
            """One `trainctl run` of the writer job; returns (wall, cpu)."""
            nonlocal failures
            name = f"bench-logs-{tag.lower()}"
            home = os.path.join(work, f"home-{tag}")
            jobfile = os.path.join(work, f"job-{tag}.yaml")
            with open(jobfile, "w") as f:
                f.write("apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\n"
                        f"metadata: {{name: {name}}}\nspec:\n  framework: tensorflow\n"
                        f"  command: [\"{py}\", \"writer.py\", \"{lines}\"]\n"
                        "  replicas:\n    worker: {count: 1}\n")
            try:
                wall, cpu, t0 = run_timed([binary, "run", jobfile],
                                          dict(env, TRAINCTL_HOME=home), work, stdout_path)
                times = attempt_times(home, name)
                extra = ""
                if times and times[1] is not None:
                    extra = (f"  (writer ran {times[1] - times[0]:.2f} s, "
                             f"stream done {t0 + wall - times[1]:.2f} s later)")
                    if verify:
                        inside.append(times[1] - times[0])
                        drain.append(t0 + wall - times[1])
                print(f"  {tag:3} trainctl run > {'/dev/null' if stdout_path == os.devnull else 'file     '}: "
                      f"{wall:6.2f} s  {payload / MIB / wall:7.1f} MiB/s  CPU {cpu:5.2f} s{extra}",
                      flush=True)
                if verify:
                    log = os.path.join(home, "jobs", name, "logs", "worker-0", "attempt-0.log")
                    for label, path, pre in (("attempt log", log, b""),
                                             ("trainctl stdout", stdout_path, prefix)):
                        if not os.path.exists(path):
                            ok, how = False, f"{path} does not exist"
                        else:
                            ok, how = check(path, lines, pre)
                        failures += not ok
                        print(f"      check {label:16} {'OK  ' if ok else 'FAIL'} {how}",
                              flush=True)
                return wall, cpu
            finally:
                shutil.rmtree(home, ignore_errors=True)
                os.unlink(jobfile)
                if stdout_path != os.devnull and os.path.exists(stdout_path):
                    os.unlink(stdout_path)

        def direct(tag, verify):
            nonlocal failures
            path = os.path.join(work, f"direct-{tag}.out")
            try:
                wall, cpu, _ = run_timed([py, writer, str(lines)], env, work, path)
                print(f"  {tag:3} writer > file:            {wall:6.2f} s  "
                      f"{payload / MIB / wall:7.1f} MiB/s  CPU {cpu:5.2f} s", flush=True)
                if verify:  # proves the writer and the checker agree
                    ok, how = check(path, lines, b"")
                    failures += not ok
                    print(f"      check {'direct file':16} {'OK  ' if ok else 'FAIL'} {how}",
                          flush=True)
                return wall, cpu
            finally:
                if os.path.exists(path):
                    os.unlink(path)

        for i in range(args.warmup):
            print(f"  warm-up pair {i + 1} (not counted):")
            via_trainctl(f"w{i + 1}", os.path.join(work, "warmup.out"), False)
            direct(f"w{i + 1}", False)
        for i in range(args.repeat):
            wall, cpu = via_trainctl(f"A{i + 1}", os.path.join(work, f"stream-{i}.out"), True)
            a_rate.append(payload / MIB / wall)
            a_cpu.append(cpu)
            wall, cpu = direct(f"B{i + 1}", i == 0)
            b_rate.append(payload / MIB / wall)
            b_cpu.append(cpu)
            if args.devnull:
                wall, _ = via_trainctl(f"C{i + 1}", os.devnull, False)
                c_rate.append(payload / MIB / wall)

        ma, mb = statistics.median(a_rate), statistics.median(b_rate)
        ratio = ma / mb
        print()
        print(f"results ({args.repeat} pairs, {payload / MIB:.0f} MiB each, {nproc} cores):")
        print(f"  trainctl run > file: median {ma:7.1f} MiB/s  (runs: "
              f"{', '.join(f'{r:.0f}' for r in a_rate)})  CPU median {statistics.median(a_cpu):.2f} s")
        print(f"  writer > file:       median {mb:7.1f} MiB/s  (runs: "
              f"{', '.join(f'{r:.0f}' for r in b_rate)})  CPU median {statistics.median(b_cpu):.2f} s")
        if c_rate:
            print(f"  trainctl run > /dev/null: median {statistics.median(c_rate):7.1f} MiB/s  (runs: "
                  f"{', '.join(f'{r:.0f}' for r in c_rate)}; informational, stdout not checked)")
        print(f"  end-to-end ratio (trainctl run / direct): {ratio:.2f}")
        print(f"  extra CPU in trainctl itself (A - B CPU, median): "
              f"{statistics.median(a_cpu) - statistics.median(b_cpu):.2f} s")
        if inside:
            replica_rate = payload / MIB / statistics.median(inside)
            print(f"  inside trainctl the writer ran {statistics.median(inside):.2f} s (median); "
                  f"trainctl exited {statistics.median(drain):.2f} s after it")
            print(f"  replica's own write rate under trainctl: {replica_rate:7.1f} MiB/s, "
                  f"ratio to direct {replica_rate / mb:.2f} (target >= {TARGET_RATIO}: "
                  f"{'PASS' if replica_rate / mb >= TARGET_RATIO else 'FAIL'})")
        print(f"  target ratio >= {TARGET_RATIO}: {'PASS' if ratio >= TARGET_RATIO else 'FAIL'} "
              f"({ratio:.2f}; a measurement: does not change the exit status)")
        print(f"  line checks: {'all OK' if failures == 0 else f'{failures} FAILED'}")
        print(f"  load avg after: {loadavg()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
