//! Bad input never panics and never corrupts state: every mistake gets its located error and
//! a non-zero exit, and jobs already stored stay as they were. State survives new CLI
//! processes. The Arena-like flag form of submit.

mod common;

use common::{job_yaml, Sandbox};

const GOOD: &str = "  command: [sh, -c, \"echo hi\"]\n  replicas: {worker: {}}\n";

/// Each bad file, and what its error must say.
const BAD: &[(&str, &str, &str)] = &[
    ("syntax.yaml", "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: x\n", "syntax.yaml:"),
    (
        "unknown.yaml",
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: x}\nspec:\n  command: [a]\n  replicaz: {}\n",
        "unknown.yaml:6:3: spec.replicaz: unknown field `replicaz`",
    ),
    (
        "type.yaml",
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: x}\nspec:\n  command: a-string\n",
        "type.yaml:5:12: spec.command: invalid type: string \"a-string\", expected a sequence",
    ),
    (
        "negative.yaml",
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: x}\nspec:\n  command: [a]\n  replicas: {worker: {count: -1}}\n",
        "negative.yaml:6:30: spec.replicas.worker.count: invalid type: integer `-1`",
    ),
    (
        "name.yaml",
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: Bad_Name}\nspec:\n  command: [a]\n  replicas: {worker: {}}\n",
        "name.yaml:3:12: metadata.name: \"Bad_Name\" is not a DNS-1035 label",
    ),
    (
        "masters.yaml",
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: x}\nspec:\n  framework: pytorch\n  command: [a]\n  replicas: {master: {count: 2}}\n",
        "masters.yaml:7:23: spec.replicas.master.count: a job has at most one master (got 2)",
    ),
    (
        "pytorch.yaml",
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: x}\nspec:\n  framework: pytorch\n  command: [a]\n  replicas: {chief: {}}\n",
        "spec.replicas: a pytorch job needs a master or workers",
    ),
    (
        "nocommand.yaml",
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: x}\nspec:\n  replicas: {worker: {}}\n",
        "nocommand.yaml:4:1: spec.command: worker replicas have no command",
    ),
];

#[test]
fn every_bad_input_is_located_and_leaves_existing_jobs_intact() {
    let sb = Sandbox::new();
    let good = sb.job("good.yaml", &job_yaml("keeper", GOOD));
    sb.ok(&["submit", good.to_str().unwrap()]);
    assert_eq!(sb.wait("keeper"), "Succeeded");
    let before = sb.ok(&["get", "keeper", "-o", "json"]);

    for (file, text, expected) in BAD {
        let path = sb.write(file, text);
        for verb in ["submit", "run"] {
            let out = sb.tc(&[verb, path.to_str().unwrap()]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{verb} {file}: {err}");
            assert!(
                err.starts_with("error: invalid job file\n"),
                "{verb} {file}: {err}"
            );
            assert!(
                err.contains(expected),
                "{verb} {file}: expected {expected:?} in:\n{err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }

    // A taken name is refused; the first job keeps its record and its logs.
    let out = sb.tc(&["submit", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("job \"keeper\" already exists"));
    // A missing file and unknown jobs.
    let out = sb.tc(&["run", "no-such-file.yaml"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("no-such-file.yaml:0:0: cannot read the job file"));
    for verb in [
        vec!["describe", "ghost"],
        vec!["delete", "ghost"],
        vec!["wait", "ghost"],
        vec!["logs", "ghost"],
    ] {
        let out = sb.tc(&verb);
        assert_eq!(out.status.code(), Some(1), "{verb:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("job \"ghost\" not found"),
            "{verb:?}"
        );
    }

    let after = sb.ok(&["get", "keeper", "-o", "json"]);
    assert_eq!(before, after);
    assert_eq!(sb.ok(&["logs", "keeper"]), "[worker-0] hi\n");
    let list = sb.ok(&["get"]);
    assert_eq!(list.lines().count(), 2, "{list}");
}

#[test]
fn state_survives_new_cli_processes_and_lists_render_in_every_format() {
    let sb = Sandbox::new();
    for name in ["first", "second"] {
        let f = sb.job(&format!("{name}.yaml"), &job_yaml(name, GOOD));
        sb.ok(&["submit", f.to_str().unwrap()]);
        sb.wait(name);
    }
    let table = sb.ok(&["get"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAME     PHASE       REPLICAS   RESTARTS   AGE"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("first    Succeeded   0/1        0"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("second   Succeeded   0/1        0"),
        "{table}"
    );
    let wide = sb.ok(&["get", "-o", "wide"]);
    assert!(
        wide.lines()
            .next()
            .unwrap()
            .ends_with("GPUS   PORTS   REASON"),
        "{wide}"
    );

    let list: serde_json::Value = serde_json::from_str(&sb.ok(&["get", "-o", "json"])).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][1]["metadata"]["name"], "second");
    assert_eq!(list["items"][1]["kind"], "TrainingJob");
    let yaml = sb.ok(&["get", "first", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: TrainingJob") && yaml.contains("phase: Succeeded"),
        "{yaml}"
    );

    let describe = sb.ok(&["describe", "first"]);
    for needle in [
        "Name:          first",
        "Phase:         Succeeded",
        "worker-0   Succeeded   0",
        "Events:",
        "ReplicaSucceeded",
    ] {
        assert!(
            describe.contains(needle),
            "missing {needle:?} in\n{describe}"
        );
    }
}

#[test]
fn flag_form_submits_a_distributed_job() {
    let sb = Sandbox::new();
    sb.write(
        "env.sh",
        "echo \"$TRAINCTL_REPLICA_TYPE $HP_EPOCHS $MODE $*\"\n",
    );
    let out = sb.ok(&[
        "submit",
        "--name",
        "flags",
        "--workers",
        "2",
        "--ps",
        "1",
        "--hp",
        "epochs=3",
        "-e",
        "MODE=fast",
        "--",
        "sh",
        "env.sh",
    ]);
    assert_eq!(out.trim(), "trainingjob/flags created");
    assert_eq!(sb.wait("flags"), "Succeeded");
    let s = sb.status("flags");
    assert_eq!(s["spec"]["framework"], "tensorflow");
    assert_eq!(s["status"]["replicas"].as_array().unwrap().len(), 3);
    assert_eq!(
        sb.attempt_log("flags", "worker-0", 0),
        "worker 3 fast --epochs=3\n"
    );

    let out = sb.tc(&["submit", "--name", "Bad!", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("metadata.name: \"Bad!\" is not a DNS-1035 label"));
    let out = sb.tc(&["submit", "--name", "nocmd"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs the command after `--`"));
    let out = sb.tc(&["submit", "--name", "x", "--env", "NOEQUALS", "--", "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--env \"NOEQUALS\": use NAME=VALUE"));
}

#[test]
fn wait_times_out_with_exit_code_2() {
    let sb = Sandbox::new();
    let f = sb.job(
        "slow.yaml",
        &job_yaml(
            "slow",
            "  command: [sleep, \"30\"]\n  replicas: {worker: {}}\n",
        ),
    );
    sb.ok(&["submit", f.to_str().unwrap()]);
    let out = sb.tc(&["wait", "slow", "--timeout", "300ms"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
    let out = sb.tc(&["wait", "slow", "--timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    sb.ok(&["delete", "slow", "--grace-period", "1"]);
}
