//! Advisory file locks (flock): one per layer being unpacked, and the store's own lock that
//! `gc` takes exclusively while resolving takes it shared.

use crate::ImageError;
use rustix::fs::{flock, FlockOperation};
use std::fs::{File, OpenOptions};
use std::path::Path;

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Waits for an exclusive lock on `path` (created if missing).
    pub(crate) fn exclusive(path: &Path) -> Result<FileLock, ImageError> {
        FileLock::take(path, FlockOperation::LockExclusive)
    }

    /// Waits for a shared lock on `path` (created if missing).
    pub(crate) fn shared(path: &Path) -> Result<FileLock, ImageError> {
        FileLock::take(path, FlockOperation::LockShared)
    }

    fn take(path: &Path, operation: FlockOperation) -> Result<FileLock, ImageError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| ImageError::io("opening the lock file", path, e))?;
        flock(&file, operation).map_err(|e| ImageError::io("locking", path, e.into()))?;
        Ok(FileLock { _file: file })
    }
}
