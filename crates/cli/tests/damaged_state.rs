//! A damaged state database: one job record that does not read hides no other job and can
//! be deleted; a database that cannot be opened is named, with SQLite's reason said once.

mod common;

use common::{job_yaml, Sandbox};
use serde_json::Value;

fn finished_job(sb: &Sandbox, name: &str) {
    let file = sb.job(
        &format!("{name}.yaml"),
        &job_yaml(name, "  command: [\"true\"]\n  replicas: {worker: {}}\n"),
    );
    sb.ok(&["submit", file.to_str().unwrap()]);
    assert_eq!(sb.wait(name), "Succeeded");
}

#[test]
fn one_unreadable_job_is_listed_by_name_among_the_others_and_delete_removes_it() {
    let sb = Sandbox::new();
    for name in ["first", "broken", "last"] {
        finished_job(&sb, name);
    }
    let db = rusqlite::Connection::open(sb.home().join("state.db")).unwrap();
    db.execute(
        "UPDATE jobs SET spec = 'garbage{' WHERE name = 'broken'",
        [],
    )
    .unwrap();
    drop(db);

    let out = sb.tc(&["get"]);
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(3).collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["first", "Succeeded", "0/1"],
            ["last", "Succeeded", "0/1"],
            ["broken", "Unreadable", "-"],
        ],
        "{table}"
    );
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.starts_with("warning: job broken cannot be read: its stored spec"),
        "{warning}"
    );
    assert!(
        warning.contains("`trainctl delete broken` removes it"),
        "{warning}"
    );

    let list: Value = serde_json::from_str(&sb.ok(&["get", "-o", "json"])).unwrap();
    let phases: Vec<(&str, &str)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["metadata"]["name"].as_str().unwrap(),
                j["status"]["phase"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            ("first", "Succeeded"),
            ("last", "Succeeded"),
            ("broken", "Unreadable")
        ]
    );

    let out = sb.tc(&["describe", "broken"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: job broken cannot be read: "),
        "{err}"
    );
    assert!(sb
        .ok(&["describe", "first"])
        .contains("Phase:         Succeeded"));

    assert_eq!(
        sb.ok(&["delete", "broken"]).trim(),
        "trainingjob/broken deleted"
    );
    assert!(!sb.home().join("jobs/broken").exists());
    let out = sb.tc(&["get"]);
    assert!(out.stderr.is_empty(), "{out:?}");
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(names, ["first", "last"]);
}

#[test]
fn a_database_that_cannot_be_opened_is_named_and_its_cause_said_once() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.home()).unwrap();
    let db = sb.home().join("state.db");
    std::fs::write(
        &db,
        "this is not a database, and it is long enough to be read as one",
    )
    .unwrap();
    let out = sb.tc(&["get"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err,
        format!(
            "error: cannot open the trainctl state directory: state database {}: file is not a database\n",
            db.display()
        )
    );
}
