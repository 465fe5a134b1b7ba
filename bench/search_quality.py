#!/usr/bin/env python3
"""trainctl's hyperparameter search side by side with Optuna, in one run.

1. Black-box quality: Branin, Hartmann6, Rosenbrock-5D, Ackley-5D; simple regret (median and
   IQR over seeds) at 25/50/100/200 sequential trials for random, TPE (independent),
   multivariate TPE and CMA-ES in both tools.
2. Multi-fidelity: Hartmann6 learning curves over 27 epochs, a fixed epoch budget per run;
   TPE alone / + median stopping / + ASHA / + Hyperband against Optuna's TPESampler with
   MedianPruner, SuccessiveHalvingPruner and HyperbandPruner.
3. Suggestion cost: time to the next TPE suggestion after 100 and 1,000 finished trials.

trainctl's side is crates/search/examples/bench_driver (built here in release mode unless
--driver is given); Optuna's runs in this interpreter. Ratios are trainctl / Optuna (below 1
is better for trainctl). Exit status 0 whatever the numbers; targets are printed as PASS/FAIL.

    python3 bench/search_quality.py [--seeds 20] [--trials 200] [--fidelity-seeds 10]
        [--budget 1350] [--jobs 2] [--only quality,fidelity,cost] [--algorithms cmaes,...]
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REQUIREMENTS = os.path.join(HERE, "requirements-search.txt")

try:
    import optuna
except ImportError:
    print(f"installing {REQUIREMENTS} ...", file=sys.stderr)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "-r", REQUIREMENTS])
    import optuna

from benchutil import loadavg  # noqa: E402

FUNCTIONS = ["branin", "hartmann6", "rosenbrock5", "ackley5"]
ALGORITHMS = ["random", "tpe", "multivariate-tpe", "cmaes"]
CHECKPOINTS = [25, 50, 100, 200]
EPOCHS = 27
STOPPERS = ["none", "medianstop", "asha", "hyperband"]

# --- the problems (the same formulas as crates/search/examples/bench_driver/problems.rs) ---

def branin(x):
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x[1] - b * x[0] ** 2 + c * x[0] - 6) ** 2 + 10 * (1 - t) * math.cos(x[0]) + 10


HARTMANN6_MIN = -3.322368011415515
_ALPHA = [1.0, 1.2, 3.0, 3.2]
_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
      [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
_P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
      [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]


def hartmann6(x):
    return -sum(_ALPHA[i] * math.exp(-sum(_A[i][j] * (x[j] - _P[i][j] * 1e-4) ** 2 for j in range(6)))
                for i in range(4))


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def ackley(x):
    n = len(x)
    return (-20 * math.exp(-0.2 * math.sqrt(sum(v * v for v in x) / n))
            - math.exp(sum(math.cos(2 * math.pi * v) for v in x) / n) + 20 + math.e)


PROBLEMS = {
    "branin": ([(-5, 10), (0, 15)], branin, 0.3978873577297382),
    "hartmann6": ([(0, 1)] * 6, hartmann6, HARTMANN6_MIN),
    "rosenbrock5": ([(-5, 10)] * 5, rosenbrock, 0.0),
    "ackley5": ([(-32.768, 32.768)] * 5, ackley, 0.0),
}

M64 = (1 << 64) - 1


def mix(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def unit(words):
    h = 0
    for w in words:
        h = mix(h ^ w)
    return ((h >> 11) + 0.5) / float(1 << 53)


def curve(x, seed, trial, epoch):
    rate = 0.05 + 0.3 * x[0]
    gap = 1.0 + 2.0 * x[5]
    progress = (math.exp(-rate * epoch) - math.exp(-rate * EPOCHS)) / (1 - math.exp(-rate * EPOCHS))
    u1, u2 = unit([seed, trial, epoch, 1]), unit([seed, trial, epoch, 2])
    noise = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
    return hartmann6(x) + gap * progress + 0.02 * noise


# --- Optuna's side ---

def quiet():
    import warnings
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")


def optuna_sampler(algorithm, seed):
    s = optuna.samplers
    if algorithm == "random":
        return s.RandomSampler(seed=seed)
    if algorithm == "tpe":
        return s.TPESampler(seed=seed, multivariate=False)
    if algorithm == "multivariate-tpe":
        return s.TPESampler(seed=seed)  # Optuna 5's default: multivariate
    if algorithm == "cmaes":
        return s.CmaEsSampler(seed=seed)
    raise ValueError(algorithm)


def optuna_quality(function, algorithm, seed, trials):
    quiet()
    bounds, f, minimum = PROBLEMS[function]
    study = optuna.create_study(sampler=optuna_sampler(algorithm, seed))
    dists = {f"x{i}": optuna.distributions.FloatDistribution(lo, hi) for i, (lo, hi) in enumerate(bounds)}
    best, regrets = math.inf, []
    started = time.perf_counter()
    for n in range(trials):
        t = study.ask(dists)
        value = f([t.params[f"x{i}"] for i in range(len(bounds))])
        study.tell(t, value)
        best = min(best, value)
        if n + 1 in CHECKPOINTS:
            regrets.append(best - minimum)
    return {"function": function, "algorithm": algorithm, "seed": seed, "regret": regrets,
            "seconds": time.perf_counter() - started}


def optuna_pruner(stopper):
    p = optuna.pruners
    return {"none": p.NopPruner(), "medianstop": p.MedianPruner(),
            "asha": p.SuccessiveHalvingPruner(), "hyperband": p.HyperbandPruner(max_resource=EPOCHS)}[stopper]


def optuna_fidelity(stopper, seed, budget):
    quiet()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna_pruner(stopper))
    dists = {f"x{i}": optuna.distributions.FloatDistribution(0, 1) for i in range(6)}
    spent, number, best, completed = 0, 0, None, 0
    while spent < budget:
        t = study.ask(dists)
        x = [t.params[f"x{i}"] for i in range(6)]
        state = None
        for epoch in range(1, EPOCHS + 1):
            if spent >= budget:
                break
            spent += 1
            v = curve(x, seed, number, epoch)
            if epoch == EPOCHS:
                study.tell(t, v)
                state = "done"
                completed += 1
                if best is None or v < best[0]:
                    best = (v, hartmann6(x) - HARTMANN6_MIN)
                break
            t.report(v, epoch)
            if t.should_prune():
                study.tell(t, state=optuna.trial.TrialState.PRUNED)
                state = "pruned"
                break
        if state is None:
            study.tell(t, state=optuna.trial.TrialState.FAIL)
        number += 1
    return {"stopper": stopper, "seed": seed, "regret": best[1] if best else math.nan,
            "trials": number, "completed": completed, "epochs": spent}


def optuna_cost(trials, repeat):
    quiet()
    out = []
    for algorithm, multivariate in [("tpe", False), ("multivariate-tpe", True)]:
        dists = {f"x{i}": optuna.distributions.FloatDistribution(0, 1) for i in range(6)}
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1, multivariate=multivariate))
        rnd = optuna.samplers.RandomSampler(seed=2)._rng.rng
        history = []
        for _ in range(trials):
            params = {k: float(rnd.uniform(0, 1)) for k in dists}
            history.append(optuna.trial.create_trial(params=params, distributions=dists,
                                                     value=hartmann6([params[f"x{i}"] for i in range(6)])))
        study.add_trials(history)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            t = study.ask(dists)
            times.append((time.perf_counter() - started) * 1e6)
            study.tell(t, state=optuna.trial.TrialState.FAIL)
        out.append({"algorithm": algorithm, "trials": trials, "median_us": statistics.median(times)})
    return out


# --- trainctl's side ---

def driver(args, *words):
    out = subprocess.run([args.driver, *map(str, words)], check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def quartiles(values):
    values = sorted(v for v in values if not math.isnan(v))
    if len(values) < 2:
        return (values[0], values[0], values[0]) if values else (math.nan,) * 3
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], statistics.median(values), q[2]


def fmt(v):
    if math.isnan(v):
        return "nan"
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def ratio(a, b):
    if b == 0:
        return "inf" if a > 0 else "1.00"
    return f"{a / b:.2f}"


def quality(args, pool):
    print(f"\n## 1. Black-box quality: simple regret, median [IQR] over {args.seeds} seeds\n")
    algorithms = [a for a in ALGORITHMS if a in args.algorithms.split(",")]
    jobs = {}
    for function in FUNCTIONS:
        for algorithm in algorithms:
            jobs[(function, algorithm)] = [pool.submit(optuna_quality, function, algorithm, seed, args.trials)
                                           for seed in range(args.seeds)]
    wins = {"multivariate-tpe": 0, "cmaes": 0}
    for function in FUNCTIONS:
        print(f"### {function}\n")
        print("| algorithm | trials | trainctl | Optuna | ratio of medians |")
        print("|---|---|---|---|---|")
        for algorithm in algorithms:
            ours = driver(args, "quality", function, algorithm, args.seeds, args.trials)
            theirs = [j.result() for j in jobs[(function, algorithm)]]
            for i, n in enumerate(CHECKPOINTS):
                if n > args.trials:
                    continue
                a = quartiles([r["regret"][i] for r in ours])
                b = quartiles([r["regret"][i] for r in theirs])
                print(f"| {algorithm} | {n} | {fmt(a[1])} [{fmt(a[0])}, {fmt(a[2])}] "
                      f"| {fmt(b[1])} [{fmt(b[0])}, {fmt(b[2])}] | {ratio(a[1], b[1])} |")
                if n == CHECKPOINTS[-1] and algorithm in wins and a[1] <= b[1]:
                    wins[algorithm] += 1
            secs_a = statistics.median(r["seconds"] for r in ours)
            secs_b = statistics.median(r["seconds"] for r in theirs)
            print(f"| {algorithm} | seconds per run | {secs_a:.3f} | {secs_b:.3f} | {ratio(secs_a, secs_b)} |")
        print()
    for algorithm, n in wins.items():
        if algorithm not in algorithms:
            continue
        verdict = "PASS" if n >= 3 else "FAIL"
        print(f"target: trainctl {algorithm} median regret at {CHECKPOINTS[-1]} trials <= Optuna's on >= 3 of 4 "
              f"functions: {n} of 4 -> {verdict}")


def fidelity(args, pool):
    print(f"\n## 2. Multi-fidelity: Hartmann6 curves, {EPOCHS} epochs, budget {args.budget} epochs, "
          f"{args.fidelity_seeds} seeds (TPE = multivariate TPE in both tools)\n")
    jobs = {s: [pool.submit(optuna_fidelity, s, seed, args.budget) for seed in range(args.fidelity_seeds)]
            for s in STOPPERS}
    print("| early stopping | trainctl regret | Optuna regret | ratio | trials (trainctl / Optuna) | completed |")
    print("|---|---|---|---|---|---|")
    best_optuna, ours_asha = math.inf, math.nan
    for s in STOPPERS:
        ours = driver(args, "fidelity", s, args.fidelity_seeds, args.budget)
        theirs = [j.result() for j in jobs[s]]
        a, b = quartiles([r["regret"] for r in ours]), quartiles([r["regret"] for r in theirs])
        if s != "none":
            best_optuna = min(best_optuna, b[1])
        if s == "asha":
            ours_asha = a[1]
        trials = f"{statistics.mean(r['trials'] for r in ours):.0f} / {statistics.mean(r['trials'] for r in theirs):.0f}"
        done = (f"{statistics.mean(r['completed'] for r in ours):.0f} / "
                f"{statistics.mean(r['completed'] for r in theirs):.0f}")
        print(f"| {s} | {fmt(a[1])} [{fmt(a[0])}, {fmt(a[2])}] | {fmt(b[1])} [{fmt(b[0])}, {fmt(b[2])}] "
              f"| {ratio(a[1], b[1])} | {trials} | {done} |")
    verdict = "PASS" if ours_asha <= best_optuna else "FAIL"
    print(f"\ntarget: trainctl + ASHA median regret {fmt(ours_asha)} <= Optuna's best pruner {fmt(best_optuna)} "
          f"-> {verdict}")


def cost(args):
    print(f"\n## 3. Suggestion cost (6-D, median of {args.repeat} suggestions)\n")
    print("| sampler | finished trials | trainctl ms | Optuna ms | ratio |")
    print("|---|---|---|---|---|")
    for n in [100, 1000]:
        ours = {r["algorithm"]: r["median_us"] for r in driver(args, "cost", n, args.repeat)}
        theirs = {r["algorithm"]: r["median_us"] for r in optuna_cost(n, args.repeat)}
        for algorithm in ["tpe", "multivariate-tpe"]:
            a, b = ours[algorithm] / 1000, theirs[algorithm] / 1000
            print(f"| {algorithm} | {n} | {a:.3f} | {b:.2f} | {ratio(a, b)} |")
            if n == 1000:
                verdict = "PASS" if a < 5 and a < b else "FAIL"
                print(f"|  | target < 5 ms and below Optuna | {verdict} | | |")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--fidelity-seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=EPOCHS * 50)
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--jobs", type=int, default=2, help="processes for Optuna's runs")
    p.add_argument("--only", default="quality,fidelity,cost")
    p.add_argument("--algorithms", default=",".join(ALGORITHMS), help="for quality: a subset of " + ",".join(ALGORITHMS))
    p.add_argument("--driver", help="a built bench_driver (default: cargo build --release)")
    args = p.parse_args()
    if not args.driver:
        subprocess.run(["cargo", "build", "-q", "--release", "-p", "trainctl-search", "--example", "bench_driver"],
                       cwd=ROOT, check=True)
        args.driver = os.path.join(ROOT, "target", "release", "examples", "bench_driver")
    only = args.only.split(",")
    print(f"# trainctl search vs Optuna {optuna.__version__} (load {loadavg()}, {os.cpu_count()} CPUs)")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        if "quality" in only:
            quality(args, pool)
        if "fidelity" in only:
            fidelity(args, pool)
    if "cost" in only:
        cost(args)


if __name__ == "__main__":
    main()
