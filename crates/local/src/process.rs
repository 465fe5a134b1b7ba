//! Child processes: each replica in its own process group, killed as a group; processes
//! identified by pid plus start time so a recycled pid is never signalled.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

/// How to start one attempt of a replica.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// argv; the first word is the program.
    pub argv: &'a [String],
    /// Variables added to (and overriding) the inherited environment.
    pub env: &'a BTreeMap<String, String>,
    /// Working directory.
    pub cwd: &'a Path,
    /// stdout and stderr both go here, appended in write order.
    pub log: &'a Path,
}

/// A started process and its identity.
#[derive(Debug)]
pub struct Spawned {
    /// The child (to wait on).
    pub child: Child,
    /// Its pid, which is also its process group id.
    pub pid: i32,
    /// Its start time in clock ticks since boot, from /proc.
    pub start_ticks: u64,
}

/// Starts a replica process in a new process group with its output in `launch.log`. The
/// child is killed if the thread that started it dies (PR_SET_PDEATHSIG), so a crashed
/// supervisor leaves no replica behind.
pub fn spawn(launch: &Launch) -> io::Result<Spawned> {
    let (program, args) = launch
        .argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    if let Some(dir) = launch.log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(launch.log)?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(launch.env)
        .current_dir(launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start {program:?}: {e}")))?;
    let pid = child.id() as i32;
    let start_ticks = start_ticks(pid).unwrap_or(0);
    Ok(Spawned {
        child,
        pid,
        start_ticks,
    })
}

/// Starts a detached process (its own session) whose output goes to `log`; it outlives the
/// caller.
pub fn spawn_detached(argv: &[String], env: &[(String, String)], log: &Path) -> io::Result<i32> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = File::options().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd.spawn()?.id() as i32)
}

/// The start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat).
pub fn start_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split(' ').nth(19)?.parse().ok()
}

/// True when `pid` is alive (not a zombie) and is still the process that started at
/// `start_ticks`.
pub fn is_same_process(pid: i32, start_ticks: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    let state = fields.first().copied().unwrap_or("Z");
    state != "Z" && fields.get(19).and_then(|s| s.parse().ok()) == Some(start_ticks)
}

/// Waits until one of `procs` (pid, start ticks) exits or `timeout` passes; true when one
/// has exited (or was gone already). Wakes at the exit itself (a pidfd per process, which
/// needs no parent relation), not at the next look; without pidfds (Linux before 5.3) it
/// looks every 2 ms.
pub fn wait_any_exit(procs: &[(i32, u64)], timeout: std::time::Duration) -> bool {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut fds = Vec::with_capacity(procs.len());
    for &(pid, start) in procs {
        // SAFETY: plain syscall; a returned descriptor is owned (and closed) by `fds`.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if fd < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
                return true;
            }
            return poll_exit(procs, timeout);
        }
        // SAFETY: `fd` was just opened and nothing else owns it.
        fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
        // The pid may have been recycled, or the process be a zombie, before the pidfd.
        if !is_same_process(pid, start) {
            return true;
        }
    }
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `polled` is a valid array of `polled.len()` pollfds for the whole call.
    let ready = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, ms) };
    ready > 0
}

/// [`wait_any_exit`] by looking at `/proc` every 2 ms.
fn poll_exit(procs: &[(i32, u64)], timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
        if procs
            .iter()
            .any(|&(pid, start)| !is_same_process(pid, start))
        {
            return true;
        }
    }
    false
}

/// True while any process is in process group `pgid`.
pub fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    pgid > 0 && unsafe { libc::killpg(pgid, 0) } == 0
}

/// True when process group `pgid`, led by the process that started at `start_ticks`, may
/// still have members: the leader is that same process, or the leader is gone (a pid that
/// names a live group is never reused) and the group is not empty.
pub fn owns_group(pgid: i32, start_ticks: u64) -> bool {
    if pgid <= 0 {
        return false;
    }
    match self::start_ticks(pgid) {
        Some(t) => t == start_ticks,
        None => group_alive(pgid),
    }
}

/// The live processes (zombies aside) whose environment holds exactly `entry`
/// (`NAME=value`), this one excepted; processes whose environment cannot be read are skipped.
pub fn with_env_entry(entry: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == entry.as_bytes()))
        })
        .filter(|&pid| start_ticks(pid).is_some_and(|t| is_same_process(pid, t)))
        .collect()
}

/// Sends `signal` to every process of group `pgid`; a gone group is not an error.
pub fn signal_group(pgid: i32, signal: i32) {
    if pgid > 0 {
        // SAFETY: plain syscall on a process group we created.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// Sends `signal` to one process.
pub fn signal_process(pid: i32, signal: i32) {
    if pid > 0 {
        // SAFETY: plain syscall.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Blocks until `pid` (a child of this process) has exited, without reaping it, so its
/// process group id cannot be recycled while we clean the group up.
pub fn wait_exited_unreaped(pid: i32) {
    // SAFETY: waitid with WNOWAIT writes only into the zeroed siginfo we own.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        loop {
            let r = libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            );
            if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    }
}

/// An exit status as a shell reports it: the code, or 128+N for death by signal N.
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sleeper(secs: &str) -> (Child, (i32, u64)) {
        let child = Command::new("sleep").arg(secs).spawn().unwrap();
        let pid = child.id() as i32;
        (child, (pid, start_ticks(pid).unwrap()))
    }

    #[test]
    fn waiting_for_exits_wakes_when_one_process_exits() {
        let (mut long, l) = sleeper("60");
        let (mut short, s) = sleeper("0.2");
        assert!(wait_any_exit(&[l, s], Duration::from_secs(60)));
        assert!(
            !is_same_process(s.0, s.1),
            "woke before the short process exited"
        );
        assert!(is_same_process(l.0, l.1));
        long.kill().unwrap();
        long.wait().unwrap();
        short.wait().unwrap();
    }

    #[test]
    fn waiting_for_exits_times_out_while_every_process_lives() {
        let (mut child, p) = sleeper("60");
        assert!(!wait_any_exit(&[p], Duration::from_millis(50)));
        assert!(is_same_process(p.0, p.1));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn waiting_for_a_process_already_gone_returns_at_once() {
        let (mut child, p) = sleeper("0");
        child.wait().unwrap();
        assert!(wait_any_exit(&[p], Duration::from_secs(60)));
    }
}
