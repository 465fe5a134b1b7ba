#!/usr/bin/env python3
"""trainctl quickstart: parameter-server training with only the standard library.

A softmax-regression classifier on a deterministic synthetic "seven-segment
digits" data set (10 classes, 8x8 = 64 features), trained with asynchronous
SGD through one or more parameter servers.  The replica's identity comes from
the Kubeflow/TensorFlow-style ``TF_CONFIG`` environment variable; without it
the program trains alone, in-process.

See README.md next to this file for the wiring, the protocol and the data set.
"""

import argparse
import json
import math
import os
import random
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from operator import mul

# --------------------------------------------------------------------------
# Model / data constants (identical in every replica).
# --------------------------------------------------------------------------

NUM_CLASSES = 10
NUM_FEATURES = 64            # 8x8 image
ROW = NUM_FEATURES + 1       # weights + bias per class
NUM_PARAMS = NUM_CLASSES * ROW  # 650, flattened row-major [class][feature|bias]

DATA_SEED = 20240611
NUM_TRAIN = 3000
NUM_TEST = 1000
NOISE_SIGMA = 0.35

DEFAULT_EPOCHS = 5
DEFAULT_BATCH_SIZE = 32
DEFAULT_LEARNING_RATE = 0.1

ROLES = ("chief", "ps", "worker", "evaluator")

# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def log(msg):
    print(msg, flush=True)


def warn(msg):
    print(f"train.py: warning: {msg}", file=sys.stderr, flush=True)


class FatalError(Exception):
    """An error that ends the program with a message and a non-zero status.

    Configuration errors exit with 2, which Kubeflow's ExitCode restart policy
    treats as permanent.
    """
    exit_code = 2


class TransientError(FatalError):
    """A parameter server could not be reached or went away.

    Exits with 138, the exit code Kubeflow's ExitCode restart policy reserves
    for user-defined retryable errors, so the replica can be restarted.
    """
    exit_code = 138


def atomic_write_json(path, obj):
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp.{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        warn(f"ignoring unreadable checkpoint {path}: {e}")
        return None


# --------------------------------------------------------------------------
# Data set: noisy seven-segment digits on an 8x8 grid
# --------------------------------------------------------------------------

# (row, col) pixels of each segment.
SEGMENTS = {
    "a": [(0, c) for c in range(2, 6)],   # top
    "f": [(r, 1) for r in range(1, 4)],   # upper left
    "b": [(r, 6) for r in range(1, 4)],   # upper right
    "g": [(4, c) for c in range(2, 6)],   # middle
    "e": [(r, 1) for r in range(5, 7)],   # lower left
    "c": [(r, 6) for r in range(5, 7)],   # lower right
    "d": [(7, c) for c in range(2, 6)],   # bottom
}
DIGIT_SEGMENTS = ["abcdef", "bc", "abdeg", "abcdg", "bcfg",
                  "acdfg", "acdefg", "abc", "abcdefg", "abcdfg"]


def generate_dataset(seed=DATA_SEED, n_train=NUM_TRAIN, n_test=NUM_TEST):
    """Return ((train_x, train_y), (test_x, test_y)).

    Each x is a list of 65 floats: 64 pixels followed by a constant 1.0 (bias
    input).  The label is drawn uniformly; the digit's lit segments get an
    intensity of U(0.75, 1.0) * U(0.85, 1.0) (per example, per segment), and
    every pixel gets N(0, 0.35^2) noise.
    """
    rng = random.Random(seed)
    gauss = rng.gauss
    uniform = rng.uniform

    def example(label):
        pix = [0.0] * NUM_FEATURES
        intensity = uniform(0.75, 1.0)
        for seg in DIGIT_SEGMENTS[label]:
            value = intensity * uniform(0.85, 1.0)
            for r, c in SEGMENTS[seg]:
                pix[r * 8 + c] = value
        x = [v + gauss(0.0, NOISE_SIGMA) for v in pix]
        x.append(1.0)
        return x

    out = []
    for n in (n_train, n_test):
        ys = [rng.randrange(NUM_CLASSES) for _ in range(n)]
        out.append(([example(y) for y in ys], ys))
    return out[0], out[1]


# --------------------------------------------------------------------------
# Softmax regression math (pure Python, batch oriented)
# --------------------------------------------------------------------------


def rows_of(flat):
    return [flat[c * ROW:(c + 1) * ROW] for c in range(NUM_CLASSES)]


def loss_and_gradient(flat, xs, ys):
    """Mean softmax cross-entropy and its gradient (flattened like the params)."""
    w_rows = rows_of(flat)
    b = len(xs)
    inv_b = 1.0 / b
    dlogits = [[0.0] * b for _ in range(NUM_CLASSES)]  # [class][example]
    exp = math.exp
    total = 0.0
    for i, (x, y) in enumerate(zip(xs, ys)):
        z = [sum(map(mul, w, x)) for w in w_rows]
        m = max(z)
        e = [exp(v - m) for v in z]
        s = sum(e)
        total += math.log(s) - (z[y] - m)
        scale = inv_b / s
        for c in range(NUM_CLASSES):
            dlogits[c][i] = e[c] * scale
        dlogits[y][i] -= inv_b
    columns = list(zip(*xs))  # [feature][example]
    grad = [sum(map(mul, dc, col)) for dc in dlogits for col in columns]
    return total * inv_b, grad


def accuracy(flat, xs, ys):
    w_rows = rows_of(flat)
    classes = range(NUM_CLASSES)
    correct = 0
    for x, y in zip(xs, ys):
        z = [sum(map(mul, w, x)) for w in w_rows]
        if max(classes, key=z.__getitem__) == y:
            correct += 1
    return correct / len(ys) if ys else 0.0


# --------------------------------------------------------------------------
# Wire protocol
#
# Every message is a frame: 4-byte little-endian payload length, then the
# payload.  Request payloads start with a 1-byte opcode, replies with a 1-byte
# status (0 = ok, 1 = error followed by a UTF-8 message).
#   INFO  (0): request ""            reply "<IIIQ" magic, start, end, version
#   PULL  (1): request ""            reply "<Q" version + (end-start) "<d"
#   PUSH  (2): request "<d" lr + n "<d" gradient   reply "<Q" new version
# --------------------------------------------------------------------------

OP_INFO, OP_PULL, OP_PUSH = 0, 1, 2
ST_OK, ST_ERR = 0, 1
MAGIC = 0x54435131  # "TCQ1"
LEN = struct.Struct("<I")
INFO = struct.Struct("<IIIQ")
VERSION = struct.Struct("<Q")
LR = struct.Struct("<d")


def recv_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError("connection closed by peer")
        got += k
    return bytes(buf)


def recv_frame(sock):
    (n,) = LEN.unpack(recv_exact(sock, LEN.size))
    if n > 64 * 1024 * 1024:
        raise ConnectionError(f"frame too large ({n} bytes)")
    return recv_exact(sock, n)


def send_frame(sock, payload):
    sock.sendall(LEN.pack(len(payload)) + payload)


def pack_doubles(values):
    return struct.pack(f"<{len(values)}d", *values)


def unpack_doubles(data, offset=0):
    n = (len(data) - offset) // 8
    return list(struct.unpack_from(f"<{n}d", data, offset))


# --------------------------------------------------------------------------
# TF_CONFIG
# --------------------------------------------------------------------------


class Cluster:
    def __init__(self, spec, task_type, task_index):
        self.spec = spec              # role -> [address]
        self.task_type = task_type
        self.task_index = task_index

    @property
    def ps(self):
        return self.spec.get("ps", [])

    @property
    def training_replicas(self):
        """Replicas that train, in shard order: chief first, then workers."""
        return ([("chief", i) for i in range(len(self.spec.get("chief", [])))] +
                [("worker", i) for i in range(len(self.spec.get("worker", [])))])

    def rank(self):
        return self.training_replicas.index((self.task_type, self.task_index))

    def reports_accuracy(self):
        """The chief, or worker 0 when there is no chief."""
        if self.spec.get("chief"):
            return self.task_type == "chief" and self.task_index == 0
        return self.task_type == "worker" and self.task_index == 0


def split_address(addr, what):
    if not isinstance(addr, str) or ":" not in addr:
        raise FatalError(f"TF_CONFIG: {what}: address {addr!r} is not host:port")
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port)
    except ValueError:
        port = -1
    if not host or not 0 < port < 65536:
        raise FatalError(f"TF_CONFIG: {what}: address {addr!r} is not host:port")
    return host, port


def parse_tf_config(text):
    """Parse and validate TF_CONFIG; raise FatalError with a clear message."""
    try:
        cfg = json.loads(text)
    except ValueError as e:
        raise FatalError(f"TF_CONFIG is not valid JSON: {e}")
    if not isinstance(cfg, dict):
        raise FatalError("TF_CONFIG must be a JSON object")
    cluster = cfg.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise FatalError('TF_CONFIG: "cluster" must be a non-empty object')
    spec = {}
    for role, addrs in cluster.items():
        role_n = "chief" if role == "master" else role
        if role_n not in ROLES:
            raise FatalError(f"TF_CONFIG: unknown role {role!r} in cluster "
                             f"(expected one of {', '.join(ROLES)})")
        if not isinstance(addrs, list):
            raise FatalError(f"TF_CONFIG: cluster.{role} must be a list of host:port")
        for i, a in enumerate(addrs):
            split_address(a, f"cluster.{role}[{i}]")
        spec[role_n] = addrs
    if len(spec.get("chief", [])) > 1:
        raise FatalError("TF_CONFIG: at most one chief is supported")
    task = cfg.get("task")
    if not isinstance(task, dict):
        raise FatalError('TF_CONFIG: "task" must be an object with "type" and "index"')
    t_type = task.get("type")
    t_index = task.get("index", 0)
    if t_type == "master":
        t_type = "chief"
    if t_type not in ROLES:
        raise FatalError(f"TF_CONFIG: task.type {task.get('type')!r} is not one of "
                         f"{', '.join(ROLES)}")
    if isinstance(t_index, str) and t_index.isdigit():
        t_index = int(t_index)
    if not isinstance(t_index, int) or isinstance(t_index, bool) or t_index < 0:
        raise FatalError(f"TF_CONFIG: task.index {task.get('index')!r} is not a "
                         "non-negative integer")
    if t_type != "evaluator":
        n = len(spec.get(t_type, []))
        if t_index >= n:
            raise FatalError(f"TF_CONFIG: task {t_type}:{t_index} is not in the "
                             f"cluster ({n} {t_type} replica(s) listed)")
    return Cluster(spec, t_type, t_index)


# --------------------------------------------------------------------------
# Parameter server
# --------------------------------------------------------------------------


def ps_range(ps_index, num_ps):
    return (ps_index * NUM_PARAMS // num_ps, (ps_index + 1) * NUM_PARAMS // num_ps)


class ParamSlice:
    def __init__(self, start, end):
        self.start, self.end = start, end
        self.values = [0.0] * (end - start)
        self.version = 0
        self.closed = False      # set on shutdown: no further updates
        self.lock = threading.Lock()

    def snapshot(self):
        with self.lock:
            return self.version, list(self.values)


class PSHandler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state = self.server.state
        n = state.end - state.start
        while True:
            try:
                req = recv_frame(sock)
            except (ConnectionError, OSError):
                return
            if not req:
                return
            op = req[0]
            try:
                if op == OP_INFO:
                    with state.lock:
                        v = state.version
                    reply = bytes([ST_OK]) + INFO.pack(MAGIC, state.start, state.end, v)
                elif op == OP_PULL:
                    with state.lock:
                        reply = (bytes([ST_OK]) + VERSION.pack(state.version) +
                                 pack_doubles(state.values))
                elif op == OP_PUSH:
                    if len(req) != 1 + LR.size + 8 * n:
                        raise ValueError(f"PUSH expects {n} gradient values")
                    (lr,) = LR.unpack_from(req, 1)
                    grad = unpack_doubles(req, 1 + LR.size)
                    with state.lock:
                        if state.closed:
                            return  # shutting down: drop the connection
                        state.values = [w - lr * g for w, g in zip(state.values, grad)]
                        state.version += 1
                        v = state.version
                    reply = bytes([ST_OK]) + VERSION.pack(v)
                else:
                    raise ValueError(f"unknown opcode {op}")
            except (ValueError, struct.error) as e:
                reply = bytes([ST_ERR]) + str(e).encode()
            try:
                send_frame(sock, reply)
            except OSError:
                return


class PSServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def bind_host_for(host):
    """Loopback addresses are bound as given, anything else on all interfaces."""
    if host in ("localhost", "::1") or host.startswith("127."):
        return "127.0.0.1" if host == "localhost" else host
    return "0.0.0.0"


def run_ps(cluster, ckpt_dir):
    num_ps = len(cluster.ps)
    idx = cluster.task_index
    host, port = split_address(cluster.ps[idx], f"cluster.ps[{idx}]")
    start, end = ps_range(idx, num_ps)
    state = ParamSlice(start, end)

    ckpt_path = None
    if ckpt_dir:
        ckpt_path = os.path.join(ckpt_dir, f"ps-{idx}-of-{num_ps}.json")
        saved = read_json(ckpt_path)
        if saved is not None:
            if (isinstance(saved, dict) and saved.get("start") == start and saved.get("end") == end and
                    len(saved.get("values", [])) == end - start):
                state.values = [float(v) for v in saved["values"]]
                state.version = int(saved.get("version", 0))
                log(f"PS {idx}: restored checkpoint {ckpt_path} "
                    f"(version {state.version})")
            else:
                warn(f"checkpoint {ckpt_path} does not match this slice; starting fresh")

    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    bind = bind_host_for(host)
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    PSServer.address_family = family
    try:
        server = PSServer((bind, port), PSHandler)
    except OSError as e:
        raise FatalError(f"PS {idx}: cannot listen on {bind}:{port}: {e}")
    server.state = state
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="ps-server", daemon=True)
    thread.start()
    log(f"PS {idx}: listening on {bind}:{port}, serving parameters "
        f"[{start}, {end}) of {NUM_PARAMS}")

    saved_version = state.version if ckpt_path else None

    def save():
        nonlocal saved_version
        version, values = state.snapshot()
        if version == saved_version:
            return
        try:
            atomic_write_json(ckpt_path, {"start": start, "end": end,
                                          "version": version, "values": values})
            saved_version = version
        except OSError as e:
            warn(f"PS {idx}: checkpoint save failed: {e}")

    # The PS never exits on its own; only a signal stops it.
    while not stop.wait(2.0):
        if ckpt_path:
            save()
    server.shutdown()
    server.server_close()
    with state.lock:
        state.closed = True
    if ckpt_path:
        save()
    log(f"PS {idx}: stopping (version {state.version})")
    return 0


# --------------------------------------------------------------------------
# Parameter stores used by the training loop
# --------------------------------------------------------------------------


class LocalStore:
    """Single-replica mode: parameters live in this process."""

    def __init__(self, values=None):
        self.values = list(values) if values else [0.0] * NUM_PARAMS

    def pull(self):
        return self.values

    def push(self, grad, lr):
        self.values = [w - lr * g for w, g in zip(self.values, grad)]

    def close(self):
        pass


class PSConnection:
    def __init__(self, index, address, deadline):
        self.index = index
        self.address = address
        host, port = split_address(address, f"cluster.ps[{index}]")
        last_err = None
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=2.0)
                break
            except OSError as e:
                last_err = e
                if time.monotonic() >= deadline:
                    raise TransientError(f"cannot reach PS {index} at {address}: {last_err}")
                time.sleep(0.2)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(60.0)
        reply = self.call(bytes([OP_INFO]))
        magic, self.start, self.end, self.version = INFO.unpack_from(reply)
        if magic != MAGIC:
            raise FatalError(f"PS {index} at {address} speaks another protocol")

    def call(self, payload):
        try:
            send_frame(self.sock, payload)
            reply = recv_frame(self.sock)
        except (OSError, ConnectionError) as e:
            raise TransientError(f"lost connection to PS {self.index} at {self.address}: {e}")
        if not reply or reply[0] != ST_OK:
            msg = reply[1:].decode(errors="replace") if reply else "empty reply"
            raise FatalError(f"PS {self.index} at {self.address} refused request: {msg}")
        return memoryview(reply)[1:]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class RemoteStore:
    """Parameters partitioned over the PS replicas."""

    def __init__(self, addresses, connect_timeout):
        deadline = time.monotonic() + connect_timeout
        self.conns = []
        for i, addr in enumerate(addresses):
            conn = PSConnection(i, addr, deadline)
            expect = ps_range(i, len(addresses))
            if (conn.start, conn.end) != expect:
                raise FatalError(f"PS {i} at {addr} serves [{conn.start}, {conn.end}) "
                                 f"but [{expect[0]}, {expect[1]}) was expected")
            self.conns.append(conn)

    def version(self):
        """Number of updates applied (every push reaches every PS; ask PS 0)."""
        return INFO.unpack_from(self.conns[0].call(bytes([OP_INFO])))[3]

    def pull(self):
        values = []
        for c in self.conns:
            values.extend(unpack_doubles(c.call(bytes([OP_PULL])), VERSION.size))
        return values

    def push(self, grad, lr):
        head = bytes([OP_PUSH]) + LR.pack(lr)
        for c in self.conns:
            c.call(head + pack_doubles(grad[c.start:c.end]))

    def close(self):
        for c in self.conns:
            c.close()


# --------------------------------------------------------------------------
# Training loop
# --------------------------------------------------------------------------


class Progress:
    """Where training is: whole epochs done and batches done in the next one.

    The checkpoint contract (docs/checkpoints.md): load the latest checkpoint at
    start, save periodically (here after every epoch) and on SIGTERM, within the
    grace period trainctl gives before SIGKILL.
    """

    def __init__(self, path, num_batches, epochs):
        self.path = path
        self.num_batches = num_batches
        self.epochs_done = 0
        self.batches_done = 0
        self.stopping = threading.Event()
        saved = read_json(path) if path else None
        if isinstance(saved, dict):
            self.epochs_done = saved_epochs(saved, epochs)
            batches = saved.get("batches_done", 0)
            if isinstance(batches, int) and 0 <= batches < num_batches:
                self.batches_done = batches
        signal.signal(signal.SIGTERM, lambda _s, _f: self.stopping.set())

    @property
    def step(self):
        return self.epochs_done * self.num_batches + self.batches_done

    def say_resumed(self):
        if self.step > 0:
            log(f"Resumed from step {self.step} (epoch {self.epochs_done + 1}, "
                f"batch {self.batches_done}; checkpoint {self.path})")

    def save(self, extra=None):
        if not self.path:
            return
        state = {"epochs_done": self.epochs_done, "batches_done": self.batches_done}
        state.update(extra or {})
        try:
            atomic_write_json(self.path, state)
        except OSError as e:
            warn(f"checkpoint save failed: {e}")


class Stopped(Exception):
    """SIGTERM arrived: progress is saved and the replica exits 143 (128 + SIGTERM)."""


def train(store, xs, ys, args, rank, progress, save):
    """Trains from `progress` to args.epochs; `save()` writes a checkpoint."""
    n = len(xs)
    bs = args.batch_size
    num_batches = progress.num_batches
    recent_loss = 0.0
    recent_time = 0.0
    recent_n = 0
    lr = args.learning_rate
    for epoch in range(progress.epochs_done + 1, args.epochs + 1):
        order = list(range(n))
        random.Random(f"{args.seed}-{rank}-{epoch}").shuffle(order)
        for b in range(progress.batches_done, num_batches):
            if progress.stopping.is_set():
                save()
                raise Stopped()
            t0 = time.perf_counter()
            idx = order[b * bs:(b + 1) * bs]
            params = store.pull()
            loss, grad = loss_and_gradient(params, [xs[i] for i in idx], [ys[i] for i in idx])
            store.push(grad, lr)
            progress.batches_done = b + 1
            step = progress.step
            recent_time += time.perf_counter() - t0
            recent_loss += loss
            recent_n += 1
            if step % args.log_every == 0 or b + 1 == num_batches:
                log(f"Step: {step}, Epoch: {epoch}, Batch: {b + 1} of {num_batches}, "
                    f"Cost: {recent_loss / recent_n:.2f}, "
                    f"AvgTime: {1000.0 * recent_time / recent_n:.1f}ms")
                recent_loss = recent_time = 0.0
                recent_n = 0
        progress.epochs_done, progress.batches_done = epoch, 0
        save()


def report_accuracy(acc):
    log(f"Test-Accuracy: {acc:.3f}")
    log(f"accuracy={acc:.3f}")


def saved_epochs(saved, epochs):
    try:
        return max(0, min(int(saved.get("epochs_done", 0)), epochs))
    except (TypeError, ValueError, AttributeError):
        return 0


def batches_of(n, batch_size):
    return (n + batch_size - 1) // batch_size


def run_single(args, ckpt_dir, rank=0, label="single", report=True):
    (train_x, train_y), (test_x, test_y) = generate_dataset(args.seed)
    ckpt_path = os.path.join(ckpt_dir, f"{label}.json") if ckpt_dir else None
    progress = Progress(ckpt_path, batches_of(len(train_x), args.batch_size), args.epochs)
    saved = read_json(ckpt_path) if ckpt_path else None
    store = LocalStore()
    if isinstance(saved, dict) and len(saved.get("values") or []) == NUM_PARAMS:
        store = LocalStore([float(v) for v in saved["values"]])
        progress.say_resumed()
    log(f"Training on {len(train_x)} examples in-process (no parameter server)")
    try:
        train(store, train_x, train_y, args, rank, progress,
              lambda: progress.save({"values": store.values}))
    except Stopped:
        log(f"{label}: stopped at step {progress.step}; checkpoint saved")
        return 143
    if report:
        report_accuracy(accuracy(store.values, test_x, test_y))
    return 0


def run_worker(cluster, args, ckpt_dir):
    replicas = cluster.training_replicas
    num_workers = len(replicas)
    rank = cluster.rank()
    name = f"{cluster.task_type}-{cluster.task_index}"
    if not cluster.ps:
        if num_workers > 1:
            warn("no ps in TF_CONFIG; every replica trains its own model on all data")
        return run_single(args, ckpt_dir, rank=rank, label=name,
                          report=cluster.reports_accuracy())

    (train_x, train_y), (test_x, test_y) = generate_dataset(args.seed)
    lo = rank * len(train_x) // num_workers
    hi = (rank + 1) * len(train_x) // num_workers
    xs, ys = train_x[lo:hi], train_y[lo:hi]

    ckpt_path = os.path.join(ckpt_dir, f"{name}.json") if ckpt_dir else None
    progress = Progress(ckpt_path, batches_of(len(xs), args.batch_size), args.epochs)
    progress.say_resumed()

    store = RemoteStore(cluster.ps, args.connect_timeout)
    log(f"Connected to {len(cluster.ps)} parameter server(s); training on shard "
        f"{rank} of {num_workers} (examples {lo}..{hi - 1})")
    try:
        train(store, xs, ys, args, rank, progress, progress.save)
        if cluster.reports_accuracy():
            report_accuracy(accuracy(store.pull(), test_x, test_y))
    except (Stopped, TransientError):
        # Suspended (the PS may stop first): keep what is done, exit as stopped.
        if not progress.stopping.is_set():
            raise
        progress.save()
        log(f"{name}: stopped at step {progress.step}; checkpoint saved")
        return 143
    finally:
        store.close()
    log(f"{name}: done")
    return 0


def run_evaluator(cluster, args):
    if not cluster.ps:
        log("Evaluator: no parameter server in the cluster; nothing to evaluate")
        return 0
    (_, _), (test_x, test_y) = generate_dataset(args.seed)
    store = RemoteStore(cluster.ps, args.connect_timeout)
    try:
        # Evaluate once the parameters stop changing (training finished or
        # paused), or after --eval_wait seconds, whichever is first.
        deadline = time.monotonic() + args.eval_wait
        last, stable_since = store.version(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            v = store.version()
            if v != last:
                last, stable_since = v, time.monotonic()
            elif v > 0 and time.monotonic() - stable_since >= 2.0:
                break
        acc = accuracy(store.pull(), test_x, test_y)
        log(f"Eval-Accuracy: {acc:.3f} (after {last} update(s))")
    finally:
        store.close()
    return 0


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def env_default(name, conv, default):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return conv(raw)
    except ValueError:
        raise FatalError(f"environment variable {name}={raw!r} is not a valid {conv.__name__}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int,
                   default=env_default("HP_EPOCHS", int, DEFAULT_EPOCHS))
    p.add_argument("--batch_size", "--batch-size", type=int,
                   default=env_default("HP_BATCH_SIZE", int, DEFAULT_BATCH_SIZE))
    p.add_argument("--learning_rate", "--learning-rate", "--lr", type=float,
                   default=env_default("HP_LEARNING_RATE", float, DEFAULT_LEARNING_RATE))
    p.add_argument("--seed", type=int, default=DATA_SEED,
                   help="data set / shuffling seed (all replicas must agree)")
    p.add_argument("--log_every", type=int, default=20)
    p.add_argument("--connect_timeout", type=float, default=30.0)
    p.add_argument("--eval_wait", type=float, default=30.0)
    args, unknown = p.parse_known_args(argv)
    if unknown:
        warn(f"ignoring unknown arguments: {' '.join(unknown)}")
    if args.epochs < 0:
        raise FatalError("--epochs must be >= 0")
    if args.batch_size < 1:
        raise FatalError("--batch_size must be >= 1")
    if not (args.learning_rate > 0 and math.isfinite(args.learning_rate)):
        raise FatalError("--learning_rate must be a positive number")
    if args.log_every < 1:
        raise FatalError("--log_every must be >= 1")
    return args


def main(argv):
    args = parse_args(argv)
    ckpt_dir = os.environ.get("TRAINCTL_CHECKPOINT_DIR") or None
    if ckpt_dir:
        try:
            os.makedirs(ckpt_dir, exist_ok=True)
        except OSError as e:
            raise FatalError(f"cannot create TRAINCTL_CHECKPOINT_DIR {ckpt_dir}: {e}")
    attempt = os.environ.get("TRAINCTL_ATTEMPT", "0")

    tf_config = os.environ.get("TF_CONFIG", "").strip()
    cluster = parse_tf_config(tf_config) if tf_config else None
    if cluster:
        role, index = cluster.task_type, cluster.task_index
        env_role = os.environ.get("TRAINCTL_REPLICA_TYPE")
        env_index = os.environ.get("TRAINCTL_REPLICA_INDEX")
        if env_role and env_role.lower() != role:
            warn(f"TRAINCTL_REPLICA_TYPE ({env_role}) differs from TF_CONFIG ({role}); "
                 "using TF_CONFIG")
        if env_index and env_index != str(index):
            warn(f"TRAINCTL_REPLICA_INDEX ({env_index}) differs from TF_CONFIG "
                 f"({index}); using TF_CONFIG")
    else:
        role = (os.environ.get("TRAINCTL_REPLICA_TYPE") or "single").lower()
        index = os.environ.get("TRAINCTL_REPLICA_INDEX") or "0"

    log(f"trainctl quickstart: role {role}, index {index}, attempt {attempt}, "
        f"epochs {args.epochs}, batch size {args.batch_size}, "
        f"learning rate {args.learning_rate:g}, "
        f"checkpoints {ckpt_dir or 'off'}")

    if cluster is None:
        return run_single(args, ckpt_dir)
    if cluster.task_type == "ps":
        return run_ps(cluster, ckpt_dir)
    if cluster.task_type == "evaluator":
        return run_evaluator(cluster, args)
    return run_worker(cluster, args, ckpt_dir)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except FatalError as e:
        print(f"train.py: error: {e}", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
