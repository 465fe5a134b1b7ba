//! Removing a job's files without making `delete` wait on the disk: the job's directory is
//! moved aside at once (a rename within the state directory), and removed by a background
//! `rm -rf`, which outlives the command. A job of 10,000 replicas has 20,000 files and
//! directories; unlinking them takes seconds.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::home::Home;

/// Moves `dir` (a job's directory) into the state directory's trash; None when it cannot
/// be moved (it is then where it was).
pub fn move_aside(home: &Home, dir: &Path) -> Option<PathBuf> {
    let trash = home.root().join("trash");
    std::fs::create_dir_all(&trash).ok()?;
    let name = format!(
        "{}-{}-{}",
        dir.file_name()?.to_string_lossy(),
        std::process::id(),
        crate::now()
    );
    let aside = trash.join(name);
    std::fs::rename(dir, &aside).ok()?;
    Some(aside)
}

/// Removes everything in the trash (what `path` was moved into, and whatever an earlier
/// removal left) in a background process; at once, here, when it cannot be started.
pub fn empty_later(path: &Path) {
    let Some(trash) = path.parent() else {
        return;
    };
    let entries: Vec<PathBuf> = std::fs::read_dir(trash)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    let started = Command::new("rm")
        .arg("-rf")
        .arg("--")
        .args(&entries)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    match started {
        // Reaped here if this process lives on (the dashboard); adopted by init otherwise.
        Ok(mut rm) => {
            std::thread::spawn(move || rm.wait());
        }
        Err(_) => {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}
