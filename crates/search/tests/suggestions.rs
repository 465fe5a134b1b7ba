//! Properties every sampler keeps: suggestions lie in their space, depend only on the seed and
//! the history, and a grid visits each point once.

use proptest::prelude::*;
use trainctl_search::{
    Direction, Domain, Parameter, Sampler, Space, Suggestion, Trial, TrialState, Value,
};

fn double() -> impl Strategy<Value = Domain> {
    prop_oneof![
        (-1e3..1e3f64, 1e-3..1e3f64).prop_map(|(min, width)| Domain::Double {
            min,
            max: min + width,
            log: false,
            step: None,
        }),
        (1e-6..1e2f64, 1.001..1e4f64).prop_map(|(min, ratio)| Domain::Double {
            min,
            max: min * ratio,
            log: true,
            step: None,
        }),
        (-100i32..100, 1u32..40, 1u32..4).prop_map(|(min, count, tenths)| {
            let step = tenths as f64 / 10.0;
            Domain::Double {
                min: min as f64,
                max: min as f64 + count as f64 * step,
                log: false,
                step: Some(step),
            }
        }),
    ]
}

fn int() -> impl Strategy<Value = Domain> {
    prop_oneof![
        (-1000i64..1000, 1i64..8, 1i64..60).prop_map(|(min, step, count)| Domain::Int {
            min,
            max: min + step * count,
            log: false,
            step,
        }),
        (1i64..100, 1i64..5000).prop_map(|(min, width)| Domain::Int {
            min,
            max: min + width,
            log: true,
            step: 1,
        }),
    ]
}

fn lists() -> impl Strategy<Value = Domain> {
    prop_oneof![
        (1usize..6).prop_map(|n| Domain::Categorical((0..n).map(|i| format!("c{i}")).collect())),
        proptest::collection::btree_set(-50i32..50, 1..6)
            .prop_map(|s| Domain::Discrete(s.into_iter().map(|v| v as f64 / 4.0).collect())),
    ]
}

fn space() -> impl Strategy<Value = Space> {
    proptest::collection::vec(prop_oneof![double(), int(), lists()], 1..5).prop_map(|domains| {
        let params = domains
            .into_iter()
            .enumerate()
            .map(|(i, domain)| Parameter {
                name: format!("p{i}"),
                domain,
            })
            .collect();
        Space::new(params).expect("generated spaces are valid")
    })
}

/// A history of `losses.len()` trials with random assignments: completed, pruned (with a
/// curve), failed or running, by `kinds`.
fn history(space: &Space, losses: &[(f64, u8)]) -> Vec<Trial> {
    let random = Sampler::new("random", &[("random_state".into(), "99".into())]).unwrap();
    losses
        .iter()
        .enumerate()
        .map(|(i, (loss, kind))| {
            let number = i as u64;
            let Suggestion::Assign(assignment) = random
                .suggest(space, Direction::Minimize, &[], number)
                .unwrap()
            else {
                unreachable!("random search never ends")
            };
            let state = match kind % 6 {
                0 => TrialState::Pruned,
                1 => TrialState::Failed,
                2 => TrialState::Running,
                _ => TrialState::Completed,
            };
            let steps = if state == TrialState::Pruned { 3 } else { 9 };
            Trial {
                number,
                assignment,
                state,
                value: (state == TrialState::Completed).then_some(*loss),
                intermediate: (1..=steps).map(|s| (s, loss + 1.0 / s as f64)).collect(),
            }
        })
        .collect()
}

const ALGORITHMS: &[&str] = &["random", "sobol", "tpe", "multivariate-tpe", "cmaes"];

fn sampler(name: &str, seed: u64) -> Sampler {
    let small_startup: Vec<(String, String)> = if name.contains("tpe") {
        vec![("n_startup_trials".into(), "3".into())]
    } else if name == "cmaes" {
        vec![("popsize".into(), "4".into())]
    } else {
        vec![]
    };
    let mut settings = small_startup;
    settings.push(("random_state".into(), seed.to_string()));
    Sampler::new(name, &settings).unwrap()
}

fn assignment(s: Suggestion) -> Vec<(String, Value)> {
    match s {
        Suggestion::Assign(a) => a,
        Suggestion::Exhausted => panic!("only a grid ends"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_suggestion_lies_in_its_space(
        space in space(),
        losses in proptest::collection::vec((-10.0..10.0f64, any::<u8>()), 0..40),
        seed in any::<u64>(),
        number in 0u64..1000,
    ) {
        let history = history(&space, &losses);
        for name in ALGORITHMS {
            for direction in [Direction::Minimize, Direction::Maximize] {
                let a = assignment(sampler(name, seed).suggest(&space, direction, &history, number).unwrap());
                prop_assert!(space.contains(&a), "{name}: {a:?} is outside {space:?}");
            }
        }
    }

    #[test]
    fn the_same_seed_and_history_give_the_same_suggestion_in_any_order(
        space in space(),
        losses in proptest::collection::vec((-10.0..10.0f64, any::<u8>()), 0..40),
        seed in any::<u64>(),
        number in 0u64..1000,
    ) {
        let history = history(&space, &losses);
        let mut reversed = history.clone();
        reversed.reverse();
        for name in ALGORITHMS {
            let first = sampler(name, seed).suggest(&space, Direction::Minimize, &history, number).unwrap();
            let again = sampler(name, seed).suggest(&space, Direction::Minimize, &history, number).unwrap();
            let reordered = sampler(name, seed).suggest(&space, Direction::Minimize, &reversed, number).unwrap();
            prop_assert_eq!(&first, &again, "{}", name);
            prop_assert_eq!(&first, &reordered, "{}", name);
        }
    }

    #[test]
    fn a_grid_enumerates_each_point_once_then_ends(
        domains in proptest::collection::vec(prop_oneof![int(), lists()], 1..4),
    ) {
        let params: Vec<Parameter> = domains.into_iter().enumerate()
            .map(|(i, domain)| Parameter { name: format!("p{i}"), domain })
            .collect();
        let space = Space::new(params).unwrap();
        let size: usize = space.params().iter().map(|p| p.grid_values().unwrap().len()).product();
        prop_assume!(size <= 400);
        let grid = Sampler::new("grid", &[]).unwrap();
        let mut trials: Vec<Trial> = Vec::new();
        loop {
            let number = trials.len() as u64;
            match grid.suggest(&space, Direction::Minimize, &trials, number).unwrap() {
                Suggestion::Exhausted => break,
                Suggestion::Assign(a) => {
                    prop_assert!(space.contains(&a));
                    prop_assert!(trials.iter().all(|t| t.assignment != a), "{a:?} suggested twice");
                    // Any state counts as used: a failed point is not retried.
                    let state = if number.is_multiple_of(3) { TrialState::Failed } else { TrialState::Running };
                    trials.push(Trial { number, assignment: a, state, value: None, intermediate: vec![] });
                }
            }
            prop_assert!(trials.len() <= size);
        }
        prop_assert_eq!(trials.len(), size);
    }
}

fn log_space() -> Space {
    Space::new(vec![Parameter {
        name: "lr".into(),
        domain: Domain::Double {
            min: 1e-4,
            max: 1.0,
            log: true,
            step: None,
        },
    }])
    .unwrap()
}

#[test]
fn log_uniform_draws_are_uniform_in_log_space() {
    let space = log_space();
    let s = sampler("random", 5);
    let below_geometric_mean = (0..4000)
        .map(|n| assignment(s.suggest(&space, Direction::Minimize, &[], n).unwrap()))
        .filter(|a| matches!(a[0].1, Value::Float(v) if v < 1e-2))
        .count();
    let share = below_geometric_mean as f64 / 4000.0;
    assert!((0.46..0.54).contains(&share), "share below 1e-2: {share}");
}

/// Runs `trials` sequential trials of `f` (minimized) and returns the best value.
fn minimize(name: &str, seed: u64, space: &Space, trials: u64, f: impl Fn(&[f64]) -> f64) -> f64 {
    let s = Sampler::new(name, &[("random_state".into(), seed.to_string())]).unwrap();
    let mut history: Vec<Trial> = Vec::new();
    for number in 0..trials {
        let a = assignment(
            s.suggest(space, Direction::Minimize, &history, number)
                .unwrap(),
        );
        let xs: Vec<f64> = a
            .iter()
            .map(|(_, v)| match v {
                Value::Float(x) => *x,
                other => panic!("numbers only: {other:?}"),
            })
            .collect();
        let value = f(&xs);
        history.push(Trial {
            number,
            assignment: a,
            state: TrialState::Completed,
            value: Some(value),
            intermediate: vec![],
        });
    }
    history
        .iter()
        .filter_map(|t| t.value)
        .fold(f64::INFINITY, f64::min)
}

fn square(dims: usize) -> Space {
    Space::new(
        (0..dims)
            .map(|i| Parameter {
                name: format!("x{i}"),
                domain: Domain::Double {
                    min: -5.0,
                    max: 5.0,
                    log: false,
                    step: None,
                },
            })
            .collect(),
    )
    .unwrap()
}

fn sphere(xs: &[f64]) -> f64 {
    xs.iter().map(|x| (x - 1.0) * (x - 1.0)).sum()
}

#[test]
fn model_based_samplers_beat_random_search_on_a_sphere() {
    let space = square(3);
    for name in ["tpe", "multivariate-tpe", "cmaes"] {
        let (mut wins, mut model_total, mut random_total) = (0, 0.0, 0.0);
        for seed in 0..5 {
            let model = minimize(name, seed, &space, 80, sphere);
            let random = minimize("random", seed, &space, 80, sphere);
            wins += usize::from(model < random);
            model_total += model;
            random_total += random;
        }
        assert!(
            wins >= 4,
            "{name} beat random search in {wins} of 5 seeds (total best {model_total} vs {random_total})"
        );
    }
}

#[test]
fn cmaes_converges_on_a_sphere() {
    let best = minimize("cmaes", 3, &square(4), 400, sphere);
    assert!(best < 1e-3, "best after 400 trials: {best}");
}

#[test]
fn cmaes_pairs_mirror_each_others_step_from_the_mean() {
    // Before any generation ends the mean is the centre of the square (0 in each coordinate):
    // the second trial of each pair is the first's point reflected through it.
    let space = square(3);
    let s = Sampler::new("cmaes", &[("random_state".into(), "5".into())]).unwrap();
    let point = |number| -> Vec<f64> {
        assignment(s.suggest(&space, Direction::Minimize, &[], number).unwrap())
            .iter()
            .map(|(_, v)| match v {
                Value::Float(x) => *x,
                other => panic!("numbers only: {other:?}"),
            })
            .collect()
    };
    for first in [0, 2, 4] {
        let (a, b) = (point(first), point(first + 1));
        assert!(
            a.iter().zip(&b).all(|(x, y)| (x + y).abs() < 1e-9),
            "trials {first} and {}: {a:?} vs {b:?}",
            first + 1
        );
        assert!(a.iter().any(|x| x.abs() > 1e-3), "a step was drawn: {a:?}");
    }
    let (b, c) = (point(1), point(2));
    assert!(
        b.iter().zip(&c).any(|(x, y)| (x + y).abs() > 1e-3),
        "trials of different pairs are independent: {b:?} vs {c:?}"
    );
}

#[test]
fn a_maximized_objective_is_searched_the_other_way() {
    // With Maximize, TPE must concentrate on large values of -sphere, i.e. near the optimum.
    let space = square(2);
    let s = Sampler::new("multivariate-tpe", &[("random_state".into(), "1".into())]).unwrap();
    let mut history: Vec<Trial> = Vec::new();
    for number in 0..60 {
        let a = assignment(
            s.suggest(&space, Direction::Maximize, &history, number)
                .unwrap(),
        );
        let xs: Vec<f64> = a
            .iter()
            .map(|(_, v)| if let Value::Float(x) = v { *x } else { 0.0 })
            .collect();
        history.push(Trial {
            number,
            assignment: a,
            state: TrialState::Completed,
            value: Some(-sphere(&xs)),
            intermediate: vec![],
        });
    }
    let best = history
        .iter()
        .filter_map(|t| t.value)
        .fold(f64::NEG_INFINITY, f64::max);
    assert!(best > -0.3, "best of 60 maximized trials: {best}");
}
