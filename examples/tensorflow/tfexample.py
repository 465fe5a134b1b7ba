"""What the three TensorFlow examples share: the generated data set, the flags, the replica's
identity from TF_CONFIG, and few threads (each replica is a whole TensorFlow runtime; a
small machine runs several of them side by side).

The data set: Gaussian points in 20 dimensions labelled by a fixed random, mildly non-linear
teacher into 4 classes; 4000 training and 1000 test points, the same in every replica.
"""

import argparse
import json
import os
import signal
import sys
import time

import numpy as np

FEATURES, HIDDEN, CLASSES = 20, 32, 4
TRAIN, TEST = 4000, 1000
DATA_SEED = 20260101
# How long a server keeps serving after SIGTERM (within trainctl's grace period).
LINGER_SECONDS = 2.0


def parse_args(doc, learning_rate):
    """--epochs --batch_size --learning_rate --checkpoint_steps (trainctl appends the job's
    hyperparameters as --name=value)."""
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--learning_rate", type=float, default=learning_rate)
    p.add_argument("--checkpoint_steps", type=int, default=100)
    return p.parse_args()


def dataset():
    """(x_train, y_train, x_test, y_test) as float32 features and int64 labels."""
    rng = np.random.default_rng(DATA_SEED)
    teacher = rng.normal(size=(FEATURES, CLASSES))
    x = rng.normal(size=(TRAIN + TEST, FEATURES)).astype(np.float32)
    y = np.argmax(x @ teacher + 0.5 * np.tanh(x @ teacher) ** 2, axis=1).astype(np.int64)
    return x[:TRAIN], y[:TRAIN], x[TRAIN:], y[TRAIN:]


def cluster_and_task():
    """(cluster, role, index) from TF_CONFIG; exits with a message (code 2) without it."""
    try:
        config = json.loads(os.environ["TF_CONFIG"])
        return config["cluster"], config["task"]["type"], int(config["task"]["index"])
    except (KeyError, ValueError, TypeError) as e:
        sys.exit(f"train.py: error: TF_CONFIG is missing or malformed ({e!r}); run under trainctl")


def quiet_and_small(tf):
    """One thread per op, two ops at a time, and no Python-side TensorFlow warnings."""
    tf.get_logger().setLevel("ERROR")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(2)


def checkpoint_dir():
    """TRAINCTL_CHECKPOINT_DIR (kept across restarts), or None to train without checkpoints."""
    return os.environ.get("TRAINCTL_CHECKPOINT_DIR")


def log_dir(run):
    """The directory of this run's event files under TRAINCTL_LOG_DIR (or ./logs)."""
    return os.path.join(os.environ.get("TRAINCTL_LOG_DIR", "logs"), run)


def glorot(fan_in, fan_out, seed):
    """Glorot-uniform initial weights, float32, from a fixed seed."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    rng = np.random.default_rng(seed)
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)


class Termination:
    """Set by SIGTERM (a suspend, a preemption, the end of the job): the training loop saves
    a checkpoint at its next step and exits with 143, as the checkpoint contract asks."""

    def __init__(self):
        self.requested = False
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.requested = True

    def exit(self, message):
        print(f"SIGTERM: {message}, exiting", flush=True)
        sys.stderr.flush()
        os._exit(143)  # without waiting for TensorFlow's threads


def serve_until_sigterm(name):
    """A parameter server (or a TF2 worker) serves on TensorFlow's threads until SIGTERM, and
    a little longer: the chief, stopped by the same SIGTERM, still reads the variables held
    here to save its checkpoint (they are in it: this process keeps nothing of its own)."""
    termination = Termination()
    while not termination.requested:
        time.sleep(0.1)
    time.sleep(LINGER_SECONDS)
    termination.exit(f"{name} served {LINGER_SECONDS:.0f} s more for the chief's checkpoint")
