//! A full disk. `$TRAINCTL_HOME` is a small tmpfs, mounted in a private mount namespace of
//! an unprivileged user namespace (`unshare --user --map-root-user --mount`, no root needed),
//! so the disk is really full: writes fail with ENOSPC, as on a full disk. Every trainctl
//! command of a test runs inside that namespace (`nsenter`).
//!
//! A job whose log fills the disk fails saying so; on the full disk the reading verbs work
//! and show every job (also one whose supervisor died there), and `delete` frees space.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use common::{job_yaml, processes_left_after, Sandbox};
use serde_json::Value;

/// A mount namespace holding a tmpfs of `size` at the sandbox's state directory; it ends
/// with the holder process.
struct FullDisk {
    holder: Child,
}

impl FullDisk {
    fn mount(sb: &Sandbox, size: &str) -> FullDisk {
        let home = sb.home();
        std::fs::create_dir_all(&home).unwrap();
        let mut holder = Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
            .arg(r#"mount -t tmpfs -o size="$1" trainctl-test "$0" && echo mounted && exec cat"#)
            .arg(&home)
            .arg(size)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux) runs");
        let mut line = String::new();
        BufReader::new(holder.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line, "mounted\n",
            "cannot mount a tmpfs in a user namespace (unshare -Urm)"
        );
        FullDisk { holder }
    }

    /// `command` run inside the namespace.
    fn enter(&self, command: Command) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.holder.id().to_string())
            .args(["--user", "--mount", "--preserve-credentials", "--"])
            .arg(command.get_program())
            .args(command.get_args())
            .stdin(Stdio::null());
        for (k, v) in command.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            c.current_dir(dir);
        }
        c
    }

    /// trainctl inside the namespace.
    fn tc(&self, sb: &Sandbox, args: &[&str]) -> Output {
        self.enter(sb.command(args)).output().unwrap()
    }

    /// trainctl inside the namespace, insisting on success; returns stdout and stderr.
    fn ok(&self, sb: &Sandbox, args: &[&str]) -> (String, String) {
        let out = self.tc(sb, args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(
            out.status.success(),
            "trainctl {args:?} failed on the full disk: {}\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        (stdout, stderr)
    }

    fn status(&self, sb: &Sandbox, job: &str) -> Value {
        serde_json::from_str(&self.ok(sb, &["get", job, "-o", "json"]).0).unwrap()
    }

    /// Fills what is left of the disk with a file at `path`.
    fn fill(&self, path: &Path) {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(r#"cat /dev/zero > "$0" 2>/dev/null; true"#)
            .arg(path);
        assert!(self.enter(c).status().unwrap().success());
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        drop(self.holder.stdin.take());
        let _ = self.holder.wait();
    }
}

#[test]
fn a_job_whose_log_fills_the_disk_fails_saying_so_and_delete_frees_the_space() {
    let sb = Sandbox::new();
    let disk = FullDisk::mount(&sb, "4m");
    // It starts writing once its supervisor has recorded the start.
    sb.write("chatty.sh", "sleep 0.5\nexec yes 'a line of output'\n");
    let file = sb.job(
        "chatty.yaml",
        &job_yaml(
            "chatty",
            "  command: [sh, chatty.sh]\n  replicas: {worker: {}}\n",
        ),
    );
    disk.ok(&sb, &["submit", file.to_str().unwrap()]);
    let out = disk.tc(&sb, &["wait", "chatty", "--timeout", "30s"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let s = disk.status(&sb, "chatty");
    let log = sb.home().join("jobs/chatty/logs/worker-0/attempt-0.log");
    assert_eq!(s["status"]["phase"], "Failed");
    assert_eq!(s["status"]["reason"], "DiskFull");
    assert_eq!(
        s["status"]["message"],
        format!("disk full writing the log of worker-0 in {}", log.display())
    );

    // Now full to the last byte, with no process holding the database open.
    disk.fill(&sb.home().join("filler"));
    let (table, warnings) = disk.ok(&sb, &["get"]);
    assert!(table.contains("chatty   Failed"), "{table}");
    assert_eq!(warnings, "");
    let (described, _) = disk.ok(&sb, &["describe", "chatty"]);
    assert!(described.contains("Reason:        DiskFull"), "{described}");
    // The last line may have been cut short by the full disk.
    let (last, _) = disk.ok(&sb, &["logs", "chatty", "--tail", "1"]);
    assert_eq!(last.lines().count(), 1, "{last}");
    assert!(
        "[worker-0] a line of output".starts_with(last.trim_end()),
        "{last}"
    );

    // The job's files go first, which makes room to remove its records.
    let (deleted, _) = disk.ok(&sb, &["delete", "chatty"]);
    assert_eq!(deleted, "trainingjob/chatty deleted\n");
    let out = disk.tc(&sb, &["get", "chatty"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("job \"chatty\" not found"));
    // And the freed space serves the next job.
    let file = sb.job(
        "after.yaml",
        &job_yaml(
            "after",
            "  command: [echo, fits]\n  replicas: {worker: {}}\n",
        ),
    );
    disk.ok(&sb, &["submit", file.to_str().unwrap()]);
    disk.ok(&sb, &["wait", "after", "--timeout", "30s"]);
    assert_eq!(disk.ok(&sb, &["logs", "after"]).0, "[worker-0] fits\n");
}

#[test]
fn on_a_full_disk_a_job_whose_supervisor_died_is_shown_failed_and_can_be_deleted() {
    let sb = Sandbox::new();
    let disk = FullDisk::mount(&sb, "4m");
    sb.write("idle.sh", "sleep 300 &\necho idling\nwait\n");
    let file = sb.job(
        "idle.yaml",
        &job_yaml(
            "idle",
            "  command: [sh, idle.sh]\n  replicas: {worker: {count: 2}}\n",
        ),
    );
    disk.ok(&sb, &["submit", file.to_str().unwrap()]);
    let start = std::time::Instant::now();
    let supervisor = loop {
        let s = disk.status(&sb, "idle");
        let replicas = s["status"]["replicas"].as_array().unwrap().clone();
        if replicas.iter().all(|r| r["state"] == "Running") {
            let pid = replicas[0]["pid"].as_i64().unwrap();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            break after.split(' ').nth(1).unwrap().parse::<i32>().unwrap();
        }
        assert!(start.elapsed().as_secs() < 20, "replicas never ran: {s:#}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    disk.fill(&sb.home().join("filler"));
    // SAFETY: plain kill(2) of the job's supervisor.
    unsafe { libc::kill(supervisor, libc::SIGKILL) };
    while Path::new(&format!("/proc/{supervisor}")).exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    let out = disk.tc(&sb, &["get", "idle", "-o", "json"]);
    assert!(out.status.success(), "{out:?}");
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["status"]["phase"], "Failed");
    assert_eq!(s["status"]["reason"], "SupervisorLost");
    for r in s["status"]["replicas"].as_array().unwrap() {
        assert_eq!(r["state"], "Stopped", "{r:#}");
    }
    for a in s["status"]["attempts"].as_array().unwrap() {
        assert!(a["finished"].is_f64(), "{a:#}");
    }
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("job idle lost its supervisor; that cannot be recorded"),
        "{warning}"
    );
    assert_eq!(
        processes_left_after(&sb.home(), "idle", 5),
        Vec::<i32>::new()
    );
    let (idling, _) = disk.ok(&sb, &["logs", "idle", "-r", "worker-1"]);
    assert_eq!(idling, "idling\n");

    let (deleted, _) = disk.ok(&sb, &["delete", "idle"]);
    assert_eq!(deleted, "trainingjob/idle deleted\n");
    let (table, warnings) = disk.ok(&sb, &["get"]);
    assert_eq!(
        (table.as_str(), warnings.as_str()),
        ("", "No jobs found.\n")
    );
}
