//! Bad spaces, algorithms and settings are refused with a message that says what is wrong and
//! what would be right.

use trainctl_search::{Domain, EarlyStopping, Parameter, Sampler, Space};

fn settings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn unknown_algorithms_and_settings_list_the_known_ones() {
    let err = Sampler::new("bayesian", &[]).unwrap_err().to_string();
    assert!(
        err.contains("\"bayesian\"")
            && err.contains("random, grid, sobol, tpe, multivariate-tpe, cmaes"),
        "{err}"
    );

    let err = Sampler::new("tpe", &settings(&[("n_candidates", "3")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("n_candidates")
            && err.contains("n_ei_candidates")
            && err.contains("random_state"),
        "{err}"
    );

    let err = Sampler::new("grid", &settings(&[("random_state", "3")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("grid") && err.contains("takes no settings"),
        "{err}"
    );

    let err = EarlyStopping::new("asha", &settings(&[("eta", "3")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("eta") && err.contains("min_resource, reduction_factor, max_resource"),
        "{err}"
    );

    let err = EarlyStopping::new("pbt", &[]).unwrap_err().to_string();
    assert!(err.contains("medianstop, asha, hyperband"), "{err}");
}

#[test]
fn setting_values_are_checked() {
    let cases = [
        ("tpe", ("random_state", "-1"), "not a non-negative integer"),
        ("tpe", ("n_ei_candidates", "0"), "not a positive integer"),
        ("tpe", ("consider_magic_clip", "yes"), "not true or false"),
        ("cmaes", ("sigma0", "abc"), "not a positive number"),
    ];
    for (algorithm, (name, value), want) in cases {
        let err = Sampler::new(algorithm, &settings(&[(name, value)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(name) && err.contains(want),
            "{algorithm} {name}={value}: {err}"
        );
    }
    let err = EarlyStopping::new("hyperband", &settings(&[("reduction_factor", "1")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("at least 2"), "{err}");
}

#[test]
fn katib_and_optuna_spellings_of_settings_are_accepted() {
    for pairs in [
        vec![
            ("random_state", "7"),
            ("n_startup_trials", "5"),
            ("n_ei_candidates", "10"),
        ],
        vec![
            ("n_startup_jobs", "5"),
            ("n_EI_candidates", "10"),
            ("prior_weight", "0.5"),
        ],
    ] {
        Sampler::new("multivariate-tpe", &settings(&pairs)).unwrap();
    }
    Sampler::new("cmaes", &settings(&[("sigma", "0.2"), ("popsize", "8")])).unwrap();
    EarlyStopping::new(
        "medianstop",
        &settings(&[("min_trials_required", "5"), ("start_step", "2")]),
    )
    .unwrap();
}

fn one(domain: Domain) -> Result<Space, String> {
    Space::new(vec![Parameter {
        name: "lr".into(),
        domain,
    }])
    .map_err(|e| e.to_string())
}

#[test]
fn malformed_spaces_name_the_parameter_and_the_problem() {
    let double = |min: f64, max: f64, log: bool, step: Option<f64>| Domain::Double {
        min,
        max,
        log,
        step,
    };
    let cases = [
        (
            double(1.0, 1.0, false, None),
            "min (1) must be less than max (1)",
        ),
        (double(0.0, 1.0, true, None), "logUniform needs min > 0"),
        (
            double(0.0, 1.0, false, Some(0.3)),
            "step 0.3 does not divide the range [0, 1]",
        ),
        (
            double(0.0, 1.0, false, Some(-0.5)),
            "step must be a positive number",
        ),
        (
            Domain::Int {
                min: 0,
                max: 10,
                log: false,
                step: 3,
            },
            "step 3 does not divide the range [0, 10]",
        ),
        (
            Domain::Int {
                min: 1,
                max: 64,
                log: true,
                step: 2,
            },
            "step cannot be combined with logUniform",
        ),
        (Domain::Categorical(vec![]), "the list of values is empty"),
        (
            Domain::Categorical(vec!["sgd".into(), "sgd".into()]),
            "names sgd twice",
        ),
        (Domain::Discrete(vec![]), "the list of values is empty"),
    ];
    for (domain, want) in cases {
        let err = one(domain.clone()).unwrap_err();
        assert!(
            err.starts_with("parameter lr: ") && err.contains(want),
            "{domain:?}: {err}"
        );
    }
    let twice = Space::new(vec![
        Parameter {
            name: "a".into(),
            domain: Domain::Categorical(vec!["x".into()]),
        },
        Parameter {
            name: "a".into(),
            domain: Domain::Categorical(vec!["y".into()]),
        },
    ]);
    assert!(twice
        .unwrap_err()
        .to_string()
        .contains("parameter a is declared twice"));
}

#[test]
fn grid_search_over_a_double_without_step_is_refused() {
    let space = one(Domain::Double {
        min: 0.0,
        max: 1.0,
        log: false,
        step: None,
    })
    .unwrap();
    let err = Sampler::new("grid", &[])
        .unwrap()
        .check(&space)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("parameter lr: grid search needs a `step`"),
        "{err}"
    );
    let stepped = one(Domain::Double {
        min: 0.0,
        max: 1.0,
        log: false,
        step: Some(0.25),
    })
    .unwrap();
    Sampler::new("grid", &[]).unwrap().check(&stepped).unwrap();
}
