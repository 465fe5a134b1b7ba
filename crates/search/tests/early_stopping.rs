//! The early-stopping rules, table-driven: each row is a situation and the decision it must get.

use trainctl_search::{Direction, EarlyStopping, Trial, TrialState, Value};

/// A trial's intermediate values: (step, value).
type Curve = Vec<(u64, f64)>;

/// A table row: case, the other trials, the running trial's curve, one more input, stop?
type Case<T> = (&'static str, Vec<Trial>, Curve, T, bool);

fn trial(number: u64, state: TrialState, curve: &[(u64, f64)]) -> Trial {
    Trial {
        number,
        assignment: vec![("x".into(), Value::Float(number as f64))],
        state,
        value: (state == TrialState::Completed)
            .then(|| curve.last().map(|c| c.1))
            .flatten(),
        intermediate: curve.to_vec(),
    }
}

/// A completed trial whose curve is `value` at every step 1..=steps.
fn flat(number: u64, value: f64, steps: u64) -> Trial {
    let curve: Vec<(u64, f64)> = (1..=steps).map(|s| (s, value)).collect();
    trial(number, TrialState::Completed, &curve)
}

fn rule(name: &str, settings: &[(&str, &str)]) -> EarlyStopping {
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    EarlyStopping::new(name, &settings).unwrap()
}

#[test]
fn median_stopping_decisions() {
    use TrialState::*;
    let three = vec![flat(0, 1.0, 10), flat(1, 2.0, 10), flat(2, 3.0, 10)];
    let four = vec![
        flat(0, 1.0, 10),
        flat(1, 2.0, 10),
        flat(2, 3.0, 10),
        flat(3, 10.0, 10),
    ];
    // (case, others, the running trial's curve, direction, stop?)
    let cases: Vec<Case<Direction>> = vec![
        (
            "worse than the median at step 4",
            three.clone(),
            vec![(4, 2.5)],
            Direction::Minimize,
            true,
        ),
        (
            "better than the median",
            three.clone(),
            vec![(4, 1.5)],
            Direction::Minimize,
            false,
        ),
        (
            "equal to the median goes on",
            three.clone(),
            vec![(4, 2.0)],
            Direction::Minimize,
            false,
        ),
        (
            "before start_step 4 nothing stops",
            three.clone(),
            vec![(3, 99.0)],
            Direction::Minimize,
            false,
        ),
        (
            "two completed trials are too few",
            three[..2].to_vec(),
            vec![(5, 99.0)],
            Direction::Minimize,
            false,
        ),
        // The true median of 1, 2, 3, 10 is 2.5; Katib's mean (4.0) would let 3.0 go on.
        (
            "true median, not the mean",
            four.clone(),
            vec![(5, 3.0)],
            Direction::Minimize,
            true,
        ),
        (
            "the best value so far counts",
            three.clone(),
            vec![(4, 1.0), (5, 9.0)],
            Direction::Minimize,
            false,
        ),
        (
            "maximize: a small value is worse",
            three.clone(),
            vec![(4, 1.5)],
            Direction::Maximize,
            true,
        ),
        (
            "maximize: a large value goes on",
            three.clone(),
            vec![(4, 2.5)],
            Direction::Maximize,
            false,
        ),
        (
            "running and pruned trials are not compared against",
            vec![
                trial(0, Running, &[(4, 1.0)]),
                trial(1, Pruned, &[(4, 1.0)]),
                trial(2, Failed, &[(4, 1.0)]),
                flat(3, 1.0, 10),
            ],
            vec![(4, 5.0)],
            Direction::Minimize,
            false,
        ),
        (
            "only values at the same step count",
            vec![flat(0, 1.0, 3), flat(1, 1.0, 3), flat(2, 1.0, 3)],
            vec![(4, 5.0)],
            Direction::Minimize,
            false,
        ),
    ];
    let median = rule("medianstop", &[]);
    for (case, others, curve, direction, want) in cases {
        let me = trial(99, Running, &curve);
        assert_eq!(
            median.should_stop(direction, &me, &others, None),
            want,
            "{case}"
        );
    }
}

#[test]
fn median_stopping_settings_change_the_thresholds() {
    let others = vec![flat(0, 1.0, 10), flat(1, 2.0, 10)];
    let me = trial(9, TrialState::Running, &[(2, 5.0)]);
    let strict = rule(
        "medianstop",
        &[("min_trials_required", "2"), ("start_step", "2")],
    );
    assert!(strict.should_stop(Direction::Minimize, &me, &others, None));
    assert!(!rule("medianstop", &[]).should_stop(Direction::Minimize, &me, &others, None));
}

#[test]
fn asha_decisions() {
    use TrialState::*;
    // Rungs at 1, 3, 9 steps (min_resource 1, reduction_factor 3), max_resource 27.
    let asha = rule("asha", &[("max_resource", "27")]);
    let at_rung_1 = |values: &[f64]| -> Vec<Trial> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| trial(i as u64, Running, &[(1, *v)]))
            .collect()
    };
    // (case, others, curve, since_step, stop?)
    let cases: Vec<Case<Option<u64>>> = vec![
        (
            "the first trial at a rung goes on",
            vec![],
            vec![(1, 9.0)],
            None,
            false,
        ),
        (
            "best of three at rung 1 goes on",
            at_rung_1(&[2.0, 3.0]),
            vec![(1, 1.0)],
            None,
            false,
        ),
        (
            "second of three at rung 1 stops",
            at_rung_1(&[1.0, 3.0]),
            vec![(1, 2.0)],
            None,
            true,
        ),
        (
            "top third of six goes on",
            at_rung_1(&[1.0, 3.0, 4.0, 5.0, 6.0]),
            vec![(1, 2.0)],
            None,
            false,
        ),
        (
            "third of six stops",
            at_rung_1(&[1.0, 2.0, 4.0, 5.0, 6.0]),
            vec![(1, 3.0)],
            None,
            true,
        ),
        (
            "between rungs nothing is judged",
            at_rung_1(&[1.0, 3.0]),
            vec![(1, 2.0), (2, 2.0)],
            Some(1),
            false,
        ),
        (
            "a rung crossed between two reports is judged",
            vec![
                trial(0, Completed, &[(3, 1.0)]),
                trial(1, Pruned, &[(3, 1.5)]),
            ],
            vec![(1, 5.0), (4, 5.0)],
            Some(1),
            true,
        ),
        (
            "the value at the rung counts, not a later one",
            vec![
                trial(0, Completed, &[(3, 1.0), (9, 0.1)]),
                trial(1, Completed, &[(3, 1.5), (9, 0.2)]),
            ],
            vec![(3, 0.5), (5, 3.0)],
            None,
            false,
        ),
        (
            "failed trials do not compete",
            vec![trial(0, Failed, &[(1, 0.0)]), trial(1, Failed, &[(1, 0.0)])],
            vec![(1, 5.0)],
            None,
            false,
        ),
        (
            "no rung at max_resource",
            vec![
                trial(0, Completed, &[(27, 0.0)]),
                trial(1, Completed, &[(27, 0.1)]),
            ],
            vec![(27, 5.0)],
            Some(26),
            false,
        ),
    ];
    for (case, others, curve, since, want) in cases {
        let me = trial(99, Running, &curve);
        assert_eq!(
            asha.should_stop(Direction::Minimize, &me, &others, since),
            want,
            "{case}"
        );
    }
}

#[test]
fn asha_keeps_one_in_reduction_factor_trials_per_rung() {
    // Thirty trials arrive at rung 1 in a shuffled order of values; ASHA keeps about a third.
    let asha = rule("asha", &[("max_resource", "27")]);
    let mut history: Vec<Trial> = Vec::new();
    let mut kept = 0;
    for n in 0..30u64 {
        let v = ((n * 7) % 30) as f64; // 0, 7, 14, 21, 28, 5, ...: every value once
        let me = trial(n, TrialState::Running, &[(1, v)]);
        if asha.should_stop(Direction::Minimize, &me, &history, None) {
            history.push(trial(n, TrialState::Pruned, &[(1, v)]));
        } else {
            kept += 1;
            history.push(me);
        }
    }
    // A third of 30 is 10; early arrivals judged against few rivals make it a little off.
    assert!((5..=15).contains(&kept), "kept {kept} of 30");
}

#[test]
fn hyperband_brackets_start_halving_at_different_rungs() {
    // max 27, min 1, factor 3: four brackets, first rungs at 1, 3, 9 and 27 (never stopped).
    let hyperband = rule("hyperband", &[("max_resource", "27")]);
    let worse_than_all = |n: u64| {
        trial(
            n,
            TrialState::Running,
            &[(1, 100.0), (3, 100.0), (9, 100.0)],
        )
    };
    let history: Vec<Trial> = (0..200).map(|n| flat(n, 0.0, 27)).collect();
    let mut stopped = 0;
    for n in 200..400 {
        stopped += usize::from(hyperband.should_stop(
            Direction::Minimize,
            &worse_than_all(n),
            &history,
            None,
        ));
    }
    // Trials of the bracket that never halves (and of brackets whose rivals are elsewhere)
    // go on, so some but not all bad trials stop.
    assert!(stopped > 50 && stopped < 200, "stopped {stopped} of 200");
}

#[test]
fn hyperband_waits_for_a_completed_trial_without_max_resource() {
    let hyperband = rule("hyperband", &[]);
    let me = trial(5, TrialState::Running, &[(1, 100.0)]);
    let running = vec![trial(0, TrialState::Running, &[(1, 0.0)])];
    assert!(!hyperband.should_stop(Direction::Minimize, &me, &running, None));
}
