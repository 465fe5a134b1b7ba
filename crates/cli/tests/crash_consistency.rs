//! Crash consistency: the supervisor of a job (the detached one of `submit`, or `trainctl
//! run` itself) is killed with SIGKILL at seeded random points across the job's life: while
//! it starts, while replicas run, around worker 0's restart, at success and while the
//! parameter server is being stopped. After every kill, through the CLI: the job is never
//! shown unfinished without a live supervisor (ended, or suspended to be resumed), no replica is shown Running and every attempt
//! has an end, it holds no GPU, no process of it survives, and every log line written before
//! the kill is in its log.
//!
//! `TRAINCTL_CRASH_SEED` replays a run (the seed is printed first); `TRAINCTL_CRASH_ITERATIONS`
//! changes how many kills (default 15).

mod common;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use common::{job_yaml, processes_left_after, replica_name, Sandbox};
use serde_json::Value;

/// Writes each line to its log (stdout) and then to a witness file outside trainctl's
/// state, so every witnessed line was in the log before any later kill.
const REPLICA: &str = r#"id="$TRAINCTL_REPLICA_TYPE-$TRAINCTL_REPLICA_INDEX"
witness="$WITNESS/$TRAINCTL_JOB/$id.$TRAINCTL_ATTEMPT"
say() { echo "$1"; echo "$1" >> "$witness"; }
sleep 300 &
if [ "$TRAINCTL_REPLICA_TYPE" = ps ]; then
  trap 'say "ps stopping"; sleep 0.2; say "ps stopped"; exit 0' TERM
  i=0
  while :; do i=$((i+1)); say "ps line $i"; sleep 0.05 & wait $!; done
fi
i=0
while [ $i -lt 8 ]; do i=$((i+1)); say "$id attempt $TRAINCTL_ATTEMPT line $i"; sleep 0.05; done
[ "$id.$TRAINCTL_ATTEMPT" = worker-0.0 ] && exit 137
exit 0
"#;

const SPEC: &str = "  framework: tensorflow
  command: [sh, replica.sh]
  replicas:
    ps: {count: 1}
    worker: {count: 2, resources: {gpu: 1}}
  runPolicy: {restartPolicy: ExitCode, backoffLimit: 3}
";

/// Where in the job's life a kill is aimed: after the replicas' own witness of a moment
/// (`replica.attempt` file, and a line in it), plus a random delay of up to `spread_ms`.
struct Aim {
    name: &'static str,
    witness: Option<(&'static str, &'static str)>,
    spread_ms: u64,
}

const AIMS: [Aim; 5] = [
    Aim {
        name: "start",
        witness: None,
        spread_ms: 60,
    },
    Aim {
        name: "running",
        witness: Some(("worker-0.0", "")),
        spread_ms: 400,
    },
    Aim {
        name: "restart",
        witness: Some(("worker-0.1", "")),
        spread_ms: 400,
    },
    Aim {
        name: "stopping the ps",
        witness: Some(("ps-0.0", "ps stopping")),
        spread_ms: 200,
    },
    Aim {
        name: "end",
        witness: Some(("ps-0.0", "ps stopped")),
        spread_ms: 100,
    },
];

/// Waits until the witness `file` of `job` exists and holds `line` ("" for any).
fn wait_for_witness(witness: &Path, job: &str, file: &str, line: &str) -> Result<(), String> {
    let path = witness.join(job).join(file);
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if line.is_empty() || text.lines().any(|l| l == line) {
                return Ok(());
            }
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!("{} never showed {line:?}", path.display()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// splitmix64: small, seedable, good enough to spread the kills.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The start time of a process (field 22 of /proc/PID/stat), None when it is gone.
fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..]
        .split(' ')
        .nth(19)?
        .parse()
        .ok()
}

/// The detached supervisor of `job` in this sandbox: `trainctl supervise JOB` with its
/// `TRAINCTL_HOME`.
fn find_supervisor(home: &Path, job: &str) -> Option<(i32, u64)> {
    let home_entry = format!("TRAINCTL_HOME={}", home.display());
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let supervises = args.windows(2).any(|w| w == [b"supervise", job.as_bytes()]);
        let ours = std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == home_entry.as_bytes()));
        if supervises && ours {
            return Some((pid, start_ticks(pid)?));
        }
    }
    None
}

enum Supervisor {
    Detached(i32, u64),
    Run(Child),
}

impl Supervisor {
    fn kill(&mut self) {
        match self {
            Supervisor::Detached(pid, start) => {
                if start_ticks(*pid) == Some(*start) {
                    // SAFETY: plain kill(2) of the process identified by pid and start time.
                    unsafe { libc::kill(*pid, libc::SIGKILL) };
                }
                let since = Instant::now();
                while start_ticks(*pid) == Some(*start) {
                    assert!(
                        since.elapsed() < Duration::from_secs(10),
                        "supervisor survived SIGKILL"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Supervisor::Run(child) => {
                let _ = child.kill();
                child.wait().unwrap();
            }
        }
    }
}

/// Which part of the job's life a kill landed in, from what the job shows afterwards.
fn stage(status: &Value) -> &'static str {
    let attempts = status["status"]["attempts"].as_array().unwrap();
    let lost = status["status"]["reason"] == "SupervisorLost";
    let w0 = attempts
        .iter()
        .filter(|a| replica_name(a) == "worker-0")
        .count();
    let w0_done = status["status"]["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| replica_name(r) == "worker-0" && r["state"] == "Succeeded");
    let lost_after_end = status["status"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["reason"] == "SupervisorLost");
    match (lost, attempts.len(), w0, w0_done) {
        (false, ..) if lost_after_end => "stopping the ps",
        (false, ..) => "after the end",
        (true, 0, ..) => "before any replica",
        (true, _, 1, _) => "first attempts",
        (true, _, _, false) => "worker-0 restarted",
        (true, _, _, true) => "stopping the ps",
    }
}

/// Checks a job whose supervisor was just killed; returns the kill's stage.
fn check(sb: &Sandbox, witness: &Path, job: &str, detached: bool) -> Result<&'static str, String> {
    let out = sb.tc(&["get", job, "-o", "json"]);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // `trainctl run` killed before it recorded the job.
        return match err.contains("not found") && !detached {
            true => Ok("before the job was created"),
            false => Err(format!("get failed: {err}")),
        };
    }
    let s: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let phase = s["status"]["phase"].as_str().unwrap_or_default();
    let reason = s["status"]["reason"].as_str().unwrap_or_default();
    match (phase, reason) {
        // Its restart policy restarts replicas: a lost supervisor leaves it resumable.
        ("Succeeded", _) | ("Suspended", "SupervisorLost") => {}
        _ => {
            return Err(format!(
                "shown {phase}/{reason} without a live supervisor: {s:#}"
            ))
        }
    }
    if reason == "SupervisorLost" {
        let message = s["status"]["message"].as_str().unwrap_or_default();
        if message.contains("supervisor.log") != detached {
            return Err(format!("message points at the wrong place: {message}"));
        }
    }
    for r in s["status"]["replicas"].as_array().unwrap() {
        if r["state"] == "Running" {
            return Err(format!("replica shown Running: {r:#}"));
        }
    }
    for a in s["status"]["attempts"].as_array().unwrap() {
        if !a["finished"].is_f64() {
            return Err(format!("attempt without an end: {a:#}"));
        }
    }
    if s["status"]["gpus"] != serde_json::json!([]) {
        return Err(format!("GPUs still held: {}", s["status"]["gpus"]));
    }
    let left = processes_left_after(&sb.home(), job, 5);
    if !left.is_empty() {
        return Err(format!("processes of the job survived: {left:?}"));
    }
    let dir = witness.join(job);
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let (replica, attempt) = file.split_once('.').unwrap();
        let written = std::fs::read_to_string(entry.path()).unwrap();
        let logged = sb.ok(&["logs", job, "-r", replica, "--attempt", attempt]);
        let logged: Vec<&str> = logged.lines().collect();
        let written: Vec<&str> = written.lines().collect();
        // In order; the shell may add lines of its own ("Terminated").
        let mut rest = logged.iter();
        if !written.iter().all(|w| rest.any(|l| l == w)) {
            return Err(format!(
                "log of {replica} attempt {attempt} lost lines: written {written:?}, logged {logged:?}"
            ));
        }
    }
    Ok(stage(&s))
}

#[test]
fn killing_the_supervisor_anywhere_leaves_an_ended_job_no_process_and_every_log_line() {
    let seed = env_number("TRAINCTL_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let iterations = env_number("TRAINCTL_CRASH_ITERATIONS").unwrap_or(15);
    eprintln!("crash test: TRAINCTL_CRASH_SEED={seed} TRAINCTL_CRASH_ITERATIONS={iterations}");
    let mut rng = Rng(seed);

    let mut sb = Sandbox::new();
    sb.gpus = Some("0,1".into());
    let witness = sb.dir.path().join("witness");
    sb.write("replica.sh", REPLICA);
    let mut stages: std::collections::BTreeMap<&str, u32> = Default::default();
    for i in 0..iterations {
        let job = format!("crash-{i}");
        std::fs::create_dir_all(witness.join(&job)).unwrap();
        let file = sb.job(&format!("{job}.yaml"), &job_yaml(&job, SPEC));
        let file = file.to_str().unwrap();
        let detached = rng.next().is_multiple_of(2);
        let aim = &AIMS[(rng.next() % AIMS.len() as u64) as usize];
        let delay = rng.next() % (aim.spread_ms + 1);
        let mut supervisor = if detached {
            let out = sb
                .command(&["submit", file])
                .env("WITNESS", &witness)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let (pid, start) = find_supervisor(&sb.home(), &job).expect("the detached supervisor");
            Supervisor::Detached(pid, start)
        } else {
            let run = sb
                .command(&["run", file])
                .env("WITNESS", &witness)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            Supervisor::Run(run)
        };
        let how = if detached { "submit" } else { "run" };
        let fail = |e: String| -> ! {
            panic!(
                "TRAINCTL_CRASH_SEED={seed}: iteration {i} ({how}, killed {delay} ms after {}): {e}",
                aim.name
            )
        };
        if let Some((file, line)) = aim.witness {
            wait_for_witness(&witness, &job, file, line).unwrap_or_else(|e| fail(e));
        }
        std::thread::sleep(Duration::from_millis(delay));
        supervisor.kill();
        match check(&sb, &witness, &job, detached) {
            Ok(stage) => *stages.entry(stage).or_default() += 1,
            Err(e) => fail(e),
        }
        // A `run` killed before it recorded its job left nothing to delete.
        if sb.tc(&["get", &job]).status.success() {
            assert_eq!(
                sb.ok(&["delete", &job]).trim(),
                format!("trainingjob/{job} deleted")
            );
        }
    }
    eprintln!("crash test: kills by stage {stages:?}");
}
