//! Where an agent keeps snapshots in its work dir:
//!
//! ```text
//! <work>/snapshots/blobs/<hex>            blob cache, one file per digest (fetched once)
//! <work>/snapshots/trees/<hex>/           a materialised snapshot (complete once it has this name)
//! <work>/snapshots/prepare/<key>.{lock,json,log}   [prepare]'s lock, result marker and output
//! <work>/snapshots/tmp/<pid>-<n>          work in progress (renamed into place at the end)
//! ```
//!
//! Everything is written under `tmp/` and renamed into place, so another process never sees a
//! half-written blob, tree or marker, and two processes doing the same work at once both end up
//! with one complete copy. What a killed process left in `tmp/` is removed by the next
//! [`WorkDir::open`].

use crate::digest::hex;
use crate::SnapshotError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// An agent's snapshot area.
#[derive(Debug, Clone)]
pub struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    /// The snapshot area of work dir `work_dir`, created if needed; leftovers of dead
    /// processes in `tmp/` are removed.
    pub fn open(work_dir: &Path) -> Result<WorkDir, SnapshotError> {
        let root = work_dir.join("snapshots");
        for sub in ["blobs", "trees", "prepare", "tmp"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(SnapshotError::io(&dir, "cannot create it"))?;
        }
        let work = WorkDir { root };
        work.remove_stale();
        Ok(work)
    }

    /// The cached blob `digest` (which must be well formed).
    pub(crate) fn blob(&self, digest: &str) -> Result<PathBuf, SnapshotError> {
        Ok(self.root.join("blobs").join(checked(digest)?))
    }

    /// The materialised tree of snapshot `digest`.
    pub fn tree(&self, digest: &str) -> Result<PathBuf, SnapshotError> {
        Ok(self.root.join("trees").join(checked(digest)?))
    }

    /// `prepare/<key>.<ext>`.
    pub(crate) fn prepare_file(&self, key: &str, ext: &str) -> PathBuf {
        self.root.join("prepare").join(format!("{key}.{ext}"))
    }

    /// A fresh path under `tmp/`, unique across processes and threads.
    pub(crate) fn temp(&self) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()))
    }

    /// Removes `tmp/<pid>-*` of processes that no longer exist.
    fn remove_stale(&self) {
        let tmp = self.root.join("tmp");
        let Ok(items) = std::fs::read_dir(&tmp) else {
            return;
        };
        for item in items.flatten() {
            let name = item.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.split('-').next()) else {
                continue;
            };
            if Path::new("/proc").join(pid).exists() {
                continue;
            }
            let path = item.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed what a dead process left")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove what a dead process left")
                }
            }
        }
    }
}

/// The hex of `digest`, or the error naming it.
fn checked(digest: &str) -> Result<&str, SnapshotError> {
    hex(digest).ok_or_else(|| SnapshotError::Invalid {
        snapshot: digest.to_string(),
        problem: "not a sha256:<hex> digest".to_string(),
    })
}

/// Renames `from` to `to` unless `to` already exists (another process finished the same work
/// first: its copy is used and ours removed). True when ours was put in place.
pub(crate) fn rename_into_place(from: &Path, to: &Path) -> Result<bool, SnapshotError> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(true),
        Err(e) if to.exists() => {
            tracing::debug!(path = %to.display(), error = %e, "already put in place by another process");
            let _ = if from.is_dir() {
                std::fs::remove_dir_all(from)
            } else {
                std::fs::remove_file(from)
            };
            Ok(false)
        }
        Err(e) => Err(SnapshotError::io(to, "cannot move it into place")(e)),
    }
}
