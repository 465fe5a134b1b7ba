//! The Rust side of bench/search_quality.py: runs trainctl's samplers and stopping rules on
//! the benchmark problems in-process and prints one JSON object per line.
//!
//! ```sh
//! bench_driver quality  FUNCTION ALGORITHM SEEDS TRIALS   # regret at 25/50/100/200 trials per seed
//! bench_driver fidelity STOPPER SEEDS BUDGET             # none|medianstop|asha|hyperband
//! bench_driver cost     TRIALS REPEAT                    # microseconds per TPE suggestion
//! ```

use std::time::Instant;

use trainctl_search::{
    Direction, Domain, EarlyStopping, Parameter, Sampler, Space, Suggestion, Trial, TrialState,
    Value,
};

mod problems;

fn space(bounds: &[(f64, f64)]) -> Space {
    Space::new(
        bounds
            .iter()
            .enumerate()
            .map(|(i, (min, max))| Parameter {
                name: format!("x{i}"),
                domain: Domain::Double {
                    min: *min,
                    max: *max,
                    log: false,
                    step: None,
                },
            })
            .collect(),
    )
    .expect("benchmark spaces are valid")
}

fn numbers(s: Suggestion) -> (Vec<(String, Value)>, Vec<f64>) {
    let Suggestion::Assign(a) = s else {
        panic!("continuous spaces never run out of points")
    };
    let xs = a
        .iter()
        .map(|(_, v)| match v {
            Value::Float(x) => *x,
            other => panic!("continuous spaces give floats, not {other:?}"),
        })
        .collect();
    (a, xs)
}

fn sampler(algorithm: &str, seed: u64) -> Sampler {
    Sampler::new(algorithm, &[("random_state".into(), seed.to_string())])
        .unwrap_or_else(|e| panic!("{e}"))
}

fn quality(function: &str, algorithm: &str, seeds: u64, trials: u64) {
    let problem = problems::by_name(function).unwrap_or_else(|| panic!("no function {function}"));
    let space = space(problem.bounds);
    for seed in 0..seeds {
        let s = sampler(algorithm, seed);
        let mut history: Vec<Trial> = Vec::new();
        let mut best = f64::INFINITY;
        let mut regrets = Vec::new();
        let started = Instant::now();
        for number in 0..trials {
            let suggestion = s
                .suggest(&space, Direction::Minimize, &history, number)
                .unwrap();
            let (assignment, xs) = numbers(suggestion);
            let value = (problem.f)(&xs);
            best = best.min(value);
            if [25, 50, 100, 200, 500, 1000].contains(&(number + 1)) {
                regrets.push(format!("{}", best - problem.minimum));
            }
            history.push(Trial {
                number,
                assignment,
                state: TrialState::Completed,
                value: Some(value),
                intermediate: vec![],
            });
        }
        println!(
            "{{\"function\":\"{function}\",\"algorithm\":\"{algorithm}\",\"seed\":{seed},\"regret\":[{}],\"seconds\":{}}}",
            regrets.join(","),
            started.elapsed().as_secs_f64()
        );
    }
}

fn fidelity(stopper: &str, seeds: u64, budget: u64) {
    let space = space(&[(0.0, 1.0); 6]);
    let rule = match stopper {
        "none" => None,
        "asha" | "hyperband" => Some(
            EarlyStopping::new(
                stopper,
                &[("max_resource".into(), problems::EPOCHS.to_string())],
            )
            .unwrap(),
        ),
        other => Some(EarlyStopping::new(other, &[]).unwrap_or_else(|e| panic!("{e}"))),
    };
    for seed in 0..seeds {
        let s = sampler("multivariate-tpe", seed);
        let mut history: Vec<Trial> = Vec::new();
        let mut spent = 0;
        let mut best: Option<(f64, f64)> = None; // (observed final value, true regret)
        let mut number = 0;
        while spent < budget {
            let (assignment, xs) = numbers(
                s.suggest(&space, Direction::Minimize, &history, number)
                    .unwrap(),
            );
            let mut me = Trial {
                number,
                assignment,
                state: TrialState::Running,
                value: None,
                intermediate: vec![],
            };
            for epoch in 1..=problems::EPOCHS {
                if spent >= budget {
                    break;
                }
                spent += 1;
                me.intermediate
                    .push((epoch, problems::curve(&xs, seed, number, epoch)));
                if epoch == problems::EPOCHS {
                    let v = me.intermediate.last().unwrap().1;
                    me.state = TrialState::Completed;
                    me.value = Some(v);
                    if best.is_none_or(|(b, _)| v < b) {
                        best = Some((v, problems::hartmann6(&xs) - problems::HARTMANN6_MIN));
                    }
                    break;
                }
                let since = me
                    .intermediate
                    .len()
                    .checked_sub(2)
                    .map(|i| me.intermediate[i].0);
                if rule
                    .as_ref()
                    .is_some_and(|r| r.should_stop(Direction::Minimize, &me, &history, since))
                {
                    me.state = TrialState::Pruned;
                    break;
                }
            }
            if me.state == TrialState::Running {
                me.state = TrialState::Failed; // cut off by the budget
            }
            history.push(me);
            number += 1;
        }
        let completed = history
            .iter()
            .filter(|t| t.state == TrialState::Completed)
            .count();
        println!(
            "{{\"stopper\":\"{stopper}\",\"seed\":{seed},\"regret\":{},\"trials\":{},\"completed\":{completed},\"epochs\":{spent}}}",
            best.map_or(f64::NAN, |b| b.1),
            history.len()
        );
    }
}

fn cost(trials: u64, repeat: u64) {
    let space = space(&[(0.0, 1.0); 6]);
    for algorithm in ["tpe", "multivariate-tpe"] {
        let s = sampler(algorithm, 1);
        let random = sampler("random", 2);
        let history: Vec<Trial> = (0..trials)
            .map(|number| {
                let (assignment, xs) = numbers(
                    random
                        .suggest(&space, Direction::Minimize, &[], number)
                        .unwrap(),
                );
                Trial {
                    number,
                    assignment,
                    state: TrialState::Completed,
                    value: Some(problems::hartmann6(&xs)),
                    intermediate: vec![],
                }
            })
            .collect();
        let mut times: Vec<f64> = (0..repeat)
            .map(|r| {
                let started = Instant::now();
                let suggestion = s.suggest(&space, Direction::Minimize, &history, trials + r);
                std::hint::black_box(suggestion.unwrap());
                started.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "{{\"algorithm\":\"{algorithm}\",\"trials\":{trials},\"median_us\":{}}}",
            times[times.len() / 2]
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> &str { args.get(i).map(String::as_str).unwrap_or_else(|| usage()) };
    let int = |i: usize| -> u64 { arg(i).parse().unwrap_or_else(|_| usage()) };
    match arg(0) {
        "quality" => quality(arg(1), arg(2), int(3), int(4)),
        "fidelity" => fidelity(arg(1), int(2), int(3)),
        "cost" => cost(int(1), int(2)),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: bench_driver quality FUNCTION ALGORITHM SEEDS TRIALS | fidelity STOPPER SEEDS BUDGET | cost TRIALS REPEAT");
    std::process::exit(2)
}
