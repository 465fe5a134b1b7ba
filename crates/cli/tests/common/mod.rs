//! A sandbox for end-to-end tests: its own state directory and working directory, and the
//! real `trainctl` binary run as a user would run it.

#![allow(dead_code)]

pub mod fake_gpus;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A state directory, a directory for job files and scripts, and the environment.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub gpus: Option<String>,
    /// A lease directory shared with another sandbox (one machine, two homes).
    pub leases: Option<PathBuf>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
            gpus: Some(String::new()),
            leases: None,
        }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// This sandbox's machine-wide GPU leases (tests run side by side; each gets its own
    /// "machine" unless two sandboxes are told to share one).
    pub fn gpu_leases(&self) -> PathBuf {
        self.leases
            .clone()
            .unwrap_or_else(|| self.dir.path().join("gpu-leases"))
    }

    pub fn work(&self) -> PathBuf {
        let p = self.dir.path().join("work");
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Writes a file in the working directory; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.work().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Writes `job.yaml`-style text under `name`.
    pub fn job(&self, name: &str, yaml: &str) -> PathBuf {
        self.write(name, yaml)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_trainctl"));
        c.args(args)
            .current_dir(self.work())
            .env("TRAINCTL_HOME", self.home())
            .env("TRAINCTL_RESTART_BACKOFF_SECONDS", "0.05")
            .env("TRAINCTL_STOP_GRACE_SECONDS", "3")
            .env("TRAINCTL_GPU_LEASE_DIR", self.gpu_leases())
            .stdin(Stdio::null());
        match &self.gpus {
            Some(g) => c.env("TRAINCTL_GPUS", g),
            None => c.env_remove("TRAINCTL_GPUS"),
        };
        c
    }

    /// Runs trainctl to completion.
    pub fn tc(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run trainctl")
    }

    /// Runs trainctl and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, &[])
    }

    /// Runs trainctl with extra environment variables and insists on success; returns stdout.
    pub fn ok_with(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let mut command = self.command(args);
        command.envs(env.iter().copied());
        let out = command.output().expect("run trainctl");
        assert!(
            out.status.success(),
            "trainctl {args:?} failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts trainctl without waiting.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn trainctl")
    }

    /// `get JOB -o json`.
    pub fn status(&self, job: &str) -> Value {
        serde_json::from_str(&self.ok(&["get", job, "-o", "json"])).expect("json")
    }

    pub fn phase(&self, job: &str) -> String {
        self.status(job)["status"]["phase"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits for the job to end (at most a minute); returns the phase.
    pub fn wait(&self, job: &str) -> String {
        let out = self.tc(&["wait", job, "--timeout", "60s"]);
        assert_ne!(
            out.status.code(),
            Some(2),
            "job {job} did not finish in time"
        );
        self.phase(job)
    }

    /// Polls until `cond` holds on the job's status (at most 30 s).
    pub fn until(&self, job: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let s = self.status(job);
            if cond(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}: {s:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The replica entry of a status.
    pub fn replica<'a>(status: &'a Value, name: &str) -> &'a Value {
        status["status"]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| replica_name(r) == name)
            .unwrap_or_else(|| panic!("no replica {name} in {status:#}"))
    }

    /// Reads an attempt's log file directly.
    pub fn attempt_log(&self, job: &str, replica: &str, attempt: u32) -> String {
        std::fs::read_to_string(
            self.home()
                .join("jobs")
                .join(job)
                .join("logs")
                .join(replica)
                .join(format!("attempt-{attempt}.log")),
        )
        .unwrap_or_default()
    }
}

/// `worker-1` from a replica entry.
pub fn replica_name(r: &Value) -> String {
    format!(
        "{}-{}",
        r["replica"]["role"].as_str().unwrap(),
        r["replica"]["index"]
    )
}

/// A job file with the given spec lines (indented by two spaces under `spec:`).
pub fn job_yaml(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: trainctl.dev/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

/// The pids of live processes whose environment has `TRAINCTL_JOB=<job>` and whose
/// `TRAINCTL_CHECKPOINT_DIR` lies under `home`: the replicas of this sandbox's job.
pub fn job_processes(home: &Path, job: &str) -> Vec<i32> {
    let marker = format!("TRAINCTL_JOB={job}");
    let home = home.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: Vec<String> = env
            .split(|b| *b == 0)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect();
        let ours = vars.contains(&marker)
            && vars
                .iter()
                .any(|v| v.starts_with("TRAINCTL_CHECKPOINT_DIR=") && v.contains(&home));
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        if ours && !zombie {
            pids.push(pid);
        }
    }
    pids
}

/// Waits up to `secs` for the job's processes to disappear; returns those left.
pub fn processes_left_after(home: &Path, job: &str, secs: u64) -> Vec<i32> {
    let start = Instant::now();
    loop {
        let left = job_processes(home, job);
        if left.is_empty() || start.elapsed() > Duration::from_secs(secs) {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
