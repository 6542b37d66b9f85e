//! Space kept on the disk holding `.psyduck` for psy itself: a preallocated file given back when
//! that disk fills up (a test writing without a `disk` limit, say), so the results of the run
//! can still be committed and the run marked as stopped instead of lost.

use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The most space kept: room for thousands of attempt rows and the run's end.
pub(crate) const MAX_RESERVE: u64 = 64 << 20;

/// Below this much free space the disk counts as full (an error that says so may be reported
/// as a generic I/O error by the layer that met it).
const NEARLY_FULL: u64 = 1 << 20;

/// A preallocated file that is deleted to free its space.
#[derive(Debug)]
pub(crate) struct Reserve {
    path: PathBuf,
    held: bool,
}

impl Reserve {
    /// Keeps `min(MAX_RESERVE, a sixteenth of the filesystem)` at `path` (reusing a reserve an
    /// earlier run left). Without the space for it, psy runs without a reserve (and says so).
    pub(crate) fn make(path: PathBuf) -> Reserve {
        let size = filesystem(&path).map_or(MAX_RESERVE, |fs| (fs.total / 16).min(MAX_RESERVE));
        match allocate(&path, size) {
            Ok(()) => Reserve { path, held: true },
            Err(e) => {
                tracing::warn!(
                    "cannot keep {size} bytes in reserve at {}: {e}; a full disk may lose results",
                    path.display()
                );
                let _ = std::fs::remove_file(&path);
                Reserve { path, held: false }
            }
        }
    }

    /// Frees the reserved space; false if there was none to free.
    pub(crate) fn release(&mut self) -> bool {
        if !std::mem::take(&mut self.held) {
            return false;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("freeing the reserve {}: {e}", self.path.display());
                false
            }
        }
    }
}

fn allocate(path: &Path, size: u64) -> io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let len =
        libc::off_t::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: fallocate on an fd we own; it allocates blocks, so the space is really taken
    // (a sparse file would reserve nothing).
    if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sizes of the filesystem holding `path` (or its parent directory, if `path` does not exist).
struct Filesystem {
    total: u64,
    free: u64,
}

fn filesystem(path: &Path) -> Option<Filesystem> {
    use std::os::unix::ffi::OsStrExt;
    let dir = if path.exists() { path } else { path.parent()? };
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct from a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let block = st.f_frsize as u64;
    Some(Filesystem {
        total: (st.f_blocks as u64).saturating_mul(block),
        free: (st.f_bavail as u64).saturating_mul(block),
    })
}

/// Whether the filesystem holding `dir` has (almost) no space left.
pub(crate) fn nearly_full(dir: &Path) -> bool {
    filesystem(dir).is_some_and(|fs| fs.free < NEARLY_FULL)
}

/// Whether `err` says the disk is full.
pub(crate) fn is_full(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_reserve_takes_real_blocks_and_gives_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reserve");
        let mut reserve = Reserve::make(path.clone());
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.len() > 0 && meta.len() <= MAX_RESERVE);
        assert!(meta.blocks() * 512 >= meta.len(), "allocated, not sparse");
        assert!(reserve.release());
        assert!(!path.exists());
        assert!(!reserve.release(), "only once");
        assert!(!nearly_full(dir.path()));
    }
}
