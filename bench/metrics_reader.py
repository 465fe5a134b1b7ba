"""Loading 1,000,000 scalars over 10 tags from one event file, side by side in one run:
trainctl's reader, tbparse, TensorBoard's EventAccumulator and TensorBoard's Rust data server
(rustboard, driven over gRPC), against a plain read of the file as the ceiling.

    cargo build --release -p trainctl-metrics --example bench_events
    .venv/bin/python3 -m pip install tbparse==0.0.9      # on top of tests/requirements.txt
    .venv/bin/python3 bench/metrics_reader.py [--points 1000000] [--tags 10] [--repeat 3]

Each reader runs in its own process, in turn, --repeat times (after one warm-up round, with
the file in the page cache); the median time of each is reported, with MB/s and the ratio to
trainctl. trainctl's reader (a small release binary) is timed from exec to exit; the Python
readers from after their imports; rustboard from starting its process until a gRPC
ReadScalars returns every point. Every reader must find all the points, or the script
exits 1.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# The Python readers time themselves after their imports and print "COUNT SECONDS", so
# interpreter start-up does not count against them; trainctl's small binary is timed whole.
PLAIN = """
import sys, time
start = time.perf_counter()
with open(sys.argv[1], "rb", buffering=0) as f:
    n = 0
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        n += len(b)
print(n, time.perf_counter() - start)
"""

TBPARSE = """
import sys, time
from tbparse import SummaryReader
start = time.perf_counter()
df = SummaryReader(sys.argv[1], pivot=False).scalars
print(len(df), time.perf_counter() - start)
"""

ACCUMULATOR = """
import sys, time
from tensorboard.backend.event_processing import event_accumulator as ea
start = time.perf_counter()
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0})
acc.Reload()
n = sum(len(acc.Scalars(t)) for t in acc.Tags()["scalars"])
print(n, time.perf_counter() - start)
"""

# Starts rustboard on the file's directory and asks it over gRPC until every point is loaded.
DATA_SERVER = """
import os, subprocess, sys, tempfile, time
import grpc
from tensorboard.data.proto import data_provider_pb2 as pb, data_provider_pb2_grpc as pb_grpc
import tensorboard_data_server
want = int(sys.argv[2])
port_file = tempfile.mktemp()
start = time.perf_counter()
server = subprocess.Popen(
    [tensorboard_data_server.server_binary(), "--logdir", os.path.dirname(sys.argv[1]),
     "--port", "0", "--port-file", port_file, "--reload", "once",
     "--samples-per-plugin", "scalars=all", "--die-after-stdin"],
    stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
while not (os.path.exists(port_file) and open(port_file).read().strip()):
    time.sleep(0.001)
stub = pb_grpc.TensorBoardDataProviderStub(
    grpc.insecure_channel("localhost:" + open(port_file).read().strip(),
                          options=[("grpc.max_receive_message_length", 1 << 30)]))
request = pb.ReadScalarsRequest(experiment_id="", plugin_filter=pb.PluginFilter(plugin_name="scalars"),
                                downsample=pb.Downsample(num_points=want * 2))
got = 0
while got < want:
    got = 0
    for run in stub.ReadScalars(request).runs:
        for tag in run.tags:
            got += len(tag.data.step)
    if got < want:
        time.sleep(0.005)
seconds = time.perf_counter() - start
server.stdin.close()
server.wait()
print(got, seconds)
"""


def timed(argv):
    """Runs a reader; returns (count it found, seconds it took)."""
    start = time.perf_counter()
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout.split()
    seconds = time.perf_counter() - start
    if len(out) == 2:
        return int(out[0]), float(out[1])
    return json.loads(" ".join(out))["points"], seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=1_000_000)
    p.add_argument("--tags", type=int, default=10)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--bench-events", default=os.path.join(
        ROOT, "target/release/examples/bench_events"))
    args = p.parse_args()
    print(f"cores: {os.cpu_count()}, load: {os.getloadavg()}")

    tmp = tempfile.mkdtemp(prefix="metrics-bench-")
    try:
        exe = os.path.join(tmp, "bench_events")
        shutil.copy(args.bench_events, exe)
        os.makedirs(os.path.join(tmp, "run"))
        path = os.path.join(tmp, "run", "events.out.tfevents.1700000000.bench")
        subprocess.run([exe, "write", path, str(args.points), str(args.tags)], check=True)
        size = os.path.getsize(path)
        print(f"{args.points} scalars over {args.tags} tags, one file of {size / 1e6:.1f} MB")

        py = sys.executable
        readers = {
            "plain read (ceiling)": ([py, "-c", PLAIN, path], size),
            "trainctl": ([exe, "read", path], args.points),
            "tbparse": ([py, "-c", TBPARSE, path], args.points),
            "EventAccumulator": ([py, "-c", ACCUMULATOR, path], args.points),
            "rustboard (data server)": ([py, "-c", DATA_SERVER, path, str(args.points)],
                                        args.points),
        }
        times = {name: [] for name in readers}
        ok = True
        for round_ in range(args.repeat + 1):
            for name, (argv, want) in readers.items():
                count, seconds = timed(argv)
                if count != want:
                    print(f"FAIL: {name} found {count}, not {want}")
                    ok = False
                if round_ > 0:
                    times[name].append(seconds)
            print(f"round {round_} done{' (warm-up)' if round_ == 0 else ''}", flush=True)

        ours = statistics.median(times["trainctl"])
        print(f"\n| reader | median s | MB/s | vs trainctl |\n|---|---|---|---|")
        for name, ts in times.items():
            m = statistics.median(ts)
            print(f"| {name} | {m:.3f} | {size / 1e6 / m:.0f} | {m / ours:.2f}x |")
        ea = statistics.median(times["EventAccumulator"])
        rb = statistics.median(times["rustboard (data server)"])
        print(f"\ntarget >= 50x faster than EventAccumulator: {ea / ours:.0f}x "
              f"{'PASS' if ea / ours >= 50 else 'FAIL'}")
        print(f"target faster than the data server: {rb / ours:.1f}x "
              f"{'PASS' if rb > ours else 'FAIL'}")
        print(f"load after: {os.getloadavg()}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
