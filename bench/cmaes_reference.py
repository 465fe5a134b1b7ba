#!/usr/bin/env python3
"""trainctl's `cmaes` (mirrored sampling) against the `cmaes` library (the plain CMA class
Optuna's CmaEsSampler drives), many seeds, side by side in one run: a diagnostic for
search_quality.py's CMA-ES rows.

The library runs as CmaEsSampler configures it (mean at the centre of the unit cube, sigma0
1/6, default population, 10 n resamplings into the box) without Optuna's storage around it,
so hundreds of seeds take seconds. Prints the median [IQR] regret at 25/50/100/200 trials
and the ratio of medians (trainctl / library).

    python3 bench/cmaes_reference.py [--seeds 300] [--functions rosenbrock5,...] [--driver PATH]
"""

import argparse
import json
import math
import os
import subprocess

import numpy as np

import search_quality as sq

import cmaes  # noqa: E402  (installed with optuna from requirements-search.txt)


def library(function, seed, trials):
    bounds, f, minimum = sq.PROBLEMS[function]
    lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    n = len(bounds)
    opt = cmaes.CMA(mean=np.full(n, 0.5), sigma=1 / 6, bounds=np.array([[0.0, 1.0]] * n),
                    seed=seed + 1, n_max_resampling=10 * n)
    best, regrets, batch = math.inf, [], []
    for k in range(1, trials + 1):
        x = opt.ask()
        v = f(list(lo + x * (hi - lo)))
        best = min(best, v)
        batch.append((x, v))
        if len(batch) == opt.population_size:
            opt.tell(batch)
            batch = []
        if k in sq.CHECKPOINTS:
            regrets.append(best - minimum)
    return regrets


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=300)
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--functions", default=",".join(sq.FUNCTIONS))
    p.add_argument("--driver", default=os.path.join(sq.ROOT, "target", "release", "examples", "bench_driver"))
    args = p.parse_args()
    print(f"# trainctl cmaes vs the cmaes library {cmaes.__version__}, {args.seeds} seeds, regret median [IQR]\n")
    print("| function | trials | trainctl | cmaes library | ratio of medians |")
    print("|---|---|---|---|---|")
    for function in args.functions.split(","):
        out = subprocess.run([args.driver, "quality", function, "cmaes", str(args.seeds), str(args.trials)],
                             check=True, capture_output=True, text=True).stdout
        ours = [json.loads(line)["regret"] for line in out.splitlines() if line.strip()]
        theirs = [library(function, seed, args.trials) for seed in range(args.seeds)]
        for i, n in enumerate(c for c in sq.CHECKPOINTS if c <= args.trials):
            a = sq.quartiles([r[i] for r in ours])
            b = sq.quartiles([r[i] for r in theirs])
            print(f"| {function} | {n} | {sq.fmt(a[1])} [{sq.fmt(a[0])}, {sq.fmt(a[2])}] "
                  f"| {sq.fmt(b[1])} [{sq.fmt(b[0])}, {sq.fmt(b[2])}] | {sq.ratio(a[1], b[1])} |")


if __name__ == "__main__":
    main()
