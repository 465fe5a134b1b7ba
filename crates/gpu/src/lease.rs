//! Machine-wide GPU leases: one lock file per GPU in a directory every user can write, held
//! with `flock` by the process that runs the job (its supervisor). Every trainctl on the
//! machine, whatever its `$TRAINCTL_HOME` or user, takes the lease before handing a GPU
//! out; the kernel drops it when the holder exits or dies, so a crash never leaks a GPU.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The environment variable naming the lease directory.
pub const DIR_VAR: &str = "TRAINCTL_GPU_LEASE_DIR";

/// The lease directory when [`DIR_VAR`] is not set.
pub const DEFAULT_DIR: &str = "/tmp/trainctl-gpu-leases";

/// The directory of lock files, shared by every trainctl on this machine.
#[derive(Debug, Clone)]
pub struct LeaseDir {
    dir: PathBuf,
}

/// One GPU held; dropping it (or the process ending) gives it back.
#[derive(Debug)]
pub struct Lease {
    /// The GPU's index.
    pub index: u32,
    _file: File,
}

/// The machine-wide admission lock, held until dropped ([`LeaseDir::admission_lock`]).
#[derive(Debug)]
pub struct AdmissionLock {
    _file: File,
}

impl LeaseDir {
    /// [`DIR_VAR`], else [`DEFAULT_DIR`].
    pub fn from_env() -> LeaseDir {
        LeaseDir::at(
            std::env::var_os(DIR_VAR).map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from),
        )
    }

    /// Leases under `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> LeaseDir {
        LeaseDir { dir: dir.into() }
    }

    /// Where the lock files are.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Takes GPU `index` unless another process holds it (`Ok(None)`). Errors name the
    /// file that could not be opened.
    pub fn try_take(&self, index: u32) -> Result<Option<Lease>, String> {
        self.ensure_dir()?;
        let path = self.dir.join(format!("gpu-{index}.lock"));
        let file = open_lock_file(&path, "the GPU lease")?;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        Ok(locked.then_some(Lease { index, _file: file }))
    }

    /// Takes every GPU of `indices` that is free now.
    pub fn take_free(&self, indices: &[u32]) -> Result<Vec<Lease>, String> {
        let mut leases = Vec::new();
        for index in indices {
            if let Some(lease) = self.try_take(*index)? {
                leases.push(lease);
            }
        }
        Ok(leases)
    }

    /// Waits for, and holds until dropped, the machine-wide admission lock: a trainctl holds
    /// it while it probes the leases and asks its queue, so two jobs asking at the same
    /// moment never see each other's probe as a GPU in use.
    pub fn admission_lock(&self) -> Result<AdmissionLock, String> {
        self.ensure_dir()?;
        let path = self.dir.join("admission.lock");
        let file = open_lock_file(&path, "the admission lock")?;
        loop {
            // SAFETY: flock on a descriptor this function owns; no memory is involved.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(AdmissionLock { _file: file });
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
    }

    fn ensure_dir(&self) -> Result<(), String> {
        if self.dir.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            format!(
                "cannot create the GPU lease directory {}: {e}",
                self.dir.display()
            )
        })?;
        // World-writable with the sticky bit, like /tmp: every user's trainctl takes leases here.
        let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o1777));
        Ok(())
    }
}

/// The environment variable that lets jobs take GPUs busy with processes trainctl did not
/// start (`1` to allow).
pub const SHARE_BUSY_VAR: &str = "TRAINCTL_SHARE_BUSY_GPUS";

/// GPUs among `leased` that run compute processes: with their lease free, no trainctl job
/// holds them, so the processes are someone else's and the GPUs are not handed out (unless
/// [`SHARE_BUSY_VAR`] is `1`). Each comes with a description for the job's events.
pub fn busy_without_lease(leased: &[u32]) -> Vec<(u32, String)> {
    if leased.is_empty() || std::env::var(SHARE_BUSY_VAR).is_ok_and(|v| v == "1") {
        return Vec::new();
    }
    crate::read_devices()
        .gpus
        .iter()
        .filter(|g| leased.contains(&g.index) && !g.processes.is_empty())
        .map(|g| {
            let pids: Vec<String> = g.processes.iter().map(|p| p.pid.to_string()).collect();
            (
                g.index,
                format!(
                    "GPU {} runs pid {} not started by trainctl",
                    g.index,
                    pids.join(", ")
                ),
            )
        })
        .collect()
}

/// Opens (creating) the lock file `path`, never through a symlink, and lets every user lock
/// it too (only the creator may change the mode). `what` names it in the error.
fn open_lock_file(path: &Path, what: &str) -> Result<std::fs::File, String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("cannot open {what} {}: {e}", path.display()))?;
    let _ = file.set_permissions(std::fs::Permissions::from_mode(0o666));
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    /// Takes GPU `index` within 10 s. A lock is shared with any child forked while its file
    /// was open (here: other tests spawning processes at the same time) until that child
    /// execs, so a lease given back can look held for a moment.
    fn assert_taken_soon(leases: &LeaseDir, index: u32, what: &str) {
        let start = std::time::Instant::now();
        while leases.try_take(index).unwrap().is_none() {
            assert!(start.elapsed().as_secs() < 10, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn a_held_gpu_cannot_be_taken_again_until_its_lease_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let leases = LeaseDir::at(dir.path().join("leases"));
        let first = leases.try_take(0).unwrap().expect("a free GPU is taken");
        assert!(leases.try_take(0).unwrap().is_none(), "held by `first`");
        assert_eq!(
            leases
                .take_free(&[0, 1, 2])
                .unwrap()
                .iter()
                .map(|l| l.index)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        drop(first);
        assert_taken_soon(&leases, 0, "given back on drop");
    }

    #[test]
    fn a_lease_held_by_a_process_that_dies_is_given_back_by_the_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let leases = LeaseDir::at(dir.path());
        assert!(leases.try_take(3).unwrap().is_some());
        let file = dir.path().join("gpu-3.lock");
        // flock(1) from util-linux holds the lock in another process group.
        let mut holder = std::process::Command::new("flock")
            .args(["-x", file.to_str().unwrap(), "sleep", "30"])
            .process_group(0)
            .spawn()
            .expect("flock(1) is installed");
        let start = std::time::Instant::now();
        while leases.try_take(3).unwrap().is_some() {
            assert!(
                start.elapsed().as_secs() < 10,
                "the other process never took the lease"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // SAFETY: signals the group this test started; no memory is involved.
        unsafe { libc::kill(-(holder.id() as i32), libc::SIGKILL) };
        holder.wait().unwrap();
        // flock(1)'s child (`sleep`) shares the lock; it may exit a moment after flock(1).
        assert_taken_soon(&leases, 3, "free once its holders are dead");
    }

    #[test]
    fn a_symlink_planted_as_a_lock_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("gpu-0.lock")).unwrap();
        let err = LeaseDir::at(dir.path()).try_take(0).unwrap_err();
        assert!(err.contains("gpu-0.lock"), "{err}");
    }
}
