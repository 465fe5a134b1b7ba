#!/usr/bin/env python3
"""The deterministic trainer of bench/chaos.py (standard library only).

Softmax regression on generated data (10 Gaussian classes in 32 dimensions), plain SGD,
--steps steps. The mini-batch of step i depends only on (--seed, i), so a run restored from
the checkpoint of step s goes on exactly as an undisturbed run would: the final weights,
and so the accuracy, are the same bit for bit.

With --checkpoint_every K > 0 and TRAINCTL_CHECKPOINT_DIR set, the weights and the step are
saved atomically every K steps (file `<replica>.json`) and restored at start. Every executed
step prints `step: i` (the benchmark counts them per attempt); the end prints
`accuracy=...` on the test set.
"""

import argparse
import json
import math
import os
import random

FEATURES, CLASSES, TRAIN, TEST, BATCH = 32, 10, 2000, 500, 16


def data(seed):
    """(train, test): lists of (features, label); class c is a Gaussian around mean c."""
    rng = random.Random(seed)
    means = [[rng.gauss(0, 0.6) for _ in range(FEATURES)] for _ in range(CLASSES)]

    def draw(n):
        out = []
        for _ in range(n):
            c = rng.randrange(CLASSES)
            out.append(([m + rng.gauss(0, 1.0) for m in means[c]], c))
        return out

    return draw(TRAIN), draw(TEST)


def logits(w, x):
    return [sum(wi * xi for wi, xi in zip(row, x)) for row in w]


def sgd_step(w, batch, lr):
    """One step of softmax-regression SGD on `batch`, in place."""
    grad = [[0.0] * FEATURES for _ in range(CLASSES)]
    for x, y in batch:
        z = logits(w, x)
        top = max(z)
        e = [math.exp(v - top) for v in z]
        s = sum(e)
        for c in range(CLASSES):
            g = e[c] / s - (1.0 if c == y else 0.0)
            row = grad[c]
            for j in range(FEATURES):
                row[j] += g * x[j]
    scale = lr / len(batch)
    for c in range(CLASSES):
        for j in range(FEATURES):
            w[c][j] -= scale * grad[c][j]


def accuracy(w, test):
    right = sum(1 for x, y in test if max(range(CLASSES), key=lambda c: logits(w, x)[c]) == y)
    return right / len(test)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--checkpoint_every", type=int, default=25)
    p.add_argument("--learning_rate", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    replica = f"{os.environ.get('TRAINCTL_REPLICA_TYPE', 'worker')}-{os.environ.get('TRAINCTL_REPLICA_INDEX', '0')}"
    ckpt_dir = os.environ.get("TRAINCTL_CHECKPOINT_DIR") if args.checkpoint_every > 0 else None
    path = ckpt_dir and os.path.join(ckpt_dir, f"{replica}.json")
    train, test = data(args.seed)
    w, start = [[0.0] * FEATURES for _ in range(CLASSES)], 0
    if path and os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        w, start = saved["w"], saved["step"]
        print(f"restored step: {start}", flush=True)
    for i in range(start, args.steps):
        rng = random.Random(args.seed * 1_000_003 + i)
        sgd_step(w, [train[rng.randrange(TRAIN)] for _ in range(BATCH)], args.learning_rate)
        print(f"step: {i + 1}", flush=True)
        if path and (i + 1) % args.checkpoint_every == 0:
            tmp = f"{path}.tmp"
            with open(tmp, "w") as f:
                json.dump({"w": w, "step": i + 1}, f)
            os.replace(tmp, path)
    print(f"accuracy={accuracy(w, test):.4f}", flush=True)


if __name__ == "__main__":
    main()
