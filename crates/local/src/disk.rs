//! A full disk: telling it from other I/O errors, finding out whether a failed replica's log
//! could still grow, and the space a supervisor sets aside so that it can still record how
//! its job ended when the disk fills up.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// How much a supervisor sets aside: room for the last records of its job.
pub const RESERVE_BYTES: i64 = 1 << 20;

/// True for "no space left on device" and "disk quota exceeded".
pub fn is_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// Whether the file at `path` (a log nobody writes to any more) can grow by a block: the
/// block is allocated and given back at once. An error when it cannot, with the OS's reason.
pub fn can_grow(path: &Path) -> io::Result<()> {
    let file = File::options().append(true).open(path)?;
    let len = file.metadata()?.len() as libc::off_t;
    // SAFETY: plain syscall on a descriptor we own.
    let err = unsafe { libc::posix_fallocate(file.as_raw_fd(), len, 4096) };
    let grown = if err == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(err))
    };
    file.set_len(len as u64)?;
    grown
}

/// Space set aside in a file until [`Reserve::release`].
#[derive(Debug)]
pub struct Reserve {
    path: Option<PathBuf>,
}

impl Reserve {
    /// Sets `bytes` aside in a new file at `path`; a reserve of nothing when the disk has
    /// no room for it.
    pub fn claim(path: &Path, bytes: i64) -> Reserve {
        let claimed = File::create(path).and_then(|f| {
            // SAFETY: plain syscall on a descriptor we own.
            match unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, bytes) } {
                0 => Ok(()),
                err => Err(io::Error::from_raw_os_error(err)),
            }
        });
        if claimed.is_err() {
            let _ = std::fs::remove_file(path);
        }
        Reserve {
            path: claimed.ok().map(|()| path.to_path_buf()),
        }
    }

    /// Gives the space back; says whether there was any.
    pub fn release(&mut self) -> bool {
        match self.path.take() {
            Some(path) => std::fs::remove_file(path).is_ok(),
            None => false,
        }
    }
}

impl Drop for Reserve {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_on_a_disk_with_room_can_grow_and_keeps_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("attempt-0.log");
        std::fs::write(&log, "hello\n").unwrap();
        can_grow(&log).unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "hello\n");
    }

    #[test]
    fn a_reserve_holds_its_bytes_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reserve");
        let mut reserve = Reserve::claim(&path, 8192);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
        assert!(reserve.release());
        assert!(!path.exists());
        assert!(!reserve.release());
    }

    #[test]
    fn only_no_space_and_quota_errors_mean_a_full_disk() {
        assert!(is_full(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_full(&io::Error::from_raw_os_error(libc::EDQUOT)));
        assert!(!is_full(&io::Error::from_raw_os_error(libc::EACCES)));
    }
}
