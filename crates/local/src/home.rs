//! Where the local engine keeps its state: `$TRAINCTL_HOME`, else `$XDG_DATA_HOME/trainctl`,
//! else `~/.local/share/trainctl`.

use std::path::{Path, PathBuf};

use trainctl_core::ReplicaId;

/// The state directory and the layout inside it.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The directory chosen by the environment.
    pub fn from_env() -> Home {
        let root = if let Some(h) = std::env::var_os("TRAINCTL_HOME").filter(|h| !h.is_empty()) {
            PathBuf::from(h)
        } else if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|h| !h.is_empty()) {
            PathBuf::from(x).join("trainctl")
        } else {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
            PathBuf::from(home).join(".local/share/trainctl")
        };
        Home::at(root)
    }

    /// A state directory at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The SQLite database.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("state.db")
    }

    /// Everything kept for one job.
    pub fn job_dir(&self, job: &str) -> PathBuf {
        self.root.join("jobs").join(job)
    }

    /// Kept across restarts: `TRAINCTL_CHECKPOINT_DIR` of every replica.
    pub fn checkpoint_dir(&self, job: &str) -> PathBuf {
        self.job_dir(job).join("checkpoints")
    }

    /// `TRAINCTL_LOG_DIR` of every replica (TensorBoard event files).
    pub fn tensorboard_dir(&self, job: &str) -> PathBuf {
        self.job_dir(job).join("tensorboard")
    }

    /// The output of one attempt of one replica.
    pub fn attempt_log(&self, job: &str, replica: ReplicaId, attempt: u32) -> PathBuf {
        self.job_dir(job)
            .join("logs")
            .join(replica.to_string())
            .join(format!("attempt-{attempt}.log"))
    }

    /// Space a supervisor sets aside to record how its job ended on a full disk.
    pub fn reserve(&self, job: &str) -> PathBuf {
        self.job_dir(job).join("reserved-space")
    }

    /// Output of the detached supervisor itself.
    pub fn supervisor_log(&self, job: &str) -> PathBuf {
        self.job_dir(job).join("supervisor.log")
    }
}
