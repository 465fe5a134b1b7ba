"""trainctl's overhead per experiment trial (issue 13, benchmark item 4).

Runs an experiment of TRIALS trials (default 100) whose trials exit at once, with
parallelTrialCount 1, through the CLI; prints the experiment's wall time, the sum of the trials'
own run times (their replicas' first start to last exit, from `trainctl get JOB -o json`) and
(wall - sum) / trials against the 50 ms target.

    python3 bench/experiment_overhead.py [path/to/trainctl] [TRIALS]
"""

import json
import os
import subprocess
import sys
import tempfile
import time

EXPERIMENT = """apiVersion: trainctl.dev/v1alpha1
kind: Experiment
metadata: {{name: overhead}}
spec:
  objective: {{type: maximize, objectiveMetricName: accuracy}}
  algorithm: {{algorithmName: random}}
  parallelTrialCount: 1
  maxTrialCount: {trials}
  parameters:
    - {{name: x, parameterType: double, feasibleSpace: {{min: 0, max: 1}}}}
  trialTemplate:
    spec:
      command: [sh, -c, "echo accuracy=$HP_X"]
      replicas: {{worker: {{}}}}
"""


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else "target/release/trainctl"
    trials = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, TRAINCTL_HOME=os.path.join(d, "home"), TRAINCTL_GPUS="")
        path = os.path.join(d, "overhead.yaml")
        with open(path, "w") as f:
            f.write(EXPERIMENT.format(trials=trials))
        t0 = time.time()
        subprocess.run([exe, "run", path], env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.time() - t0
        run_sum = 0.0
        for n in range(trials):
            job = json.loads(subprocess.run([exe, "get", f"overhead-{n}", "-o", "json"], env=env,
                                            check=True, capture_output=True).stdout)
            spans = [(a["started"], a["finished"]) for a in find_attempts(job)]
            run_sum += max(e for _, e in spans) - min(s for s, _ in spans)
    per_trial = (wall - run_sum) / trials
    print(f"trials {trials}  wall {wall:.2f}s  trial run time {run_sum:.2f}s  "
          f"overhead/trial {1000 * per_trial:.1f} ms  (target 50 ms: ratio {per_trial / 0.05:.2f})")


def find_attempts(obj):
    """Every {started, finished} record in a job object."""
    out = []
    if isinstance(obj, dict):
        if isinstance(obj.get("started"), float) and isinstance(obj.get("finished"), float):
            out.append(obj)
        for v in obj.values():
            out.extend(find_attempts(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(find_attempts(v))
    return out


if __name__ == "__main__":
    main()
