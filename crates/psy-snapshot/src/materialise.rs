//! Writing a snapshot's tree on an agent: once per machine, atomically.

use crate::cache::BlobCache;
use crate::layout::{rename_into_place, WorkDir};
use crate::snapshot::{EntryKind, Snapshot};
use crate::{BoxError, SnapshotError};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// Where blobs and snapshot documents come from: the server (psy-fleet's `ServerBlobs`), or a
/// test's map. Both answers are checked against the digest asked for by the caller.
pub trait BlobSource {
    /// The content of blob `digest`.
    fn blob(&self, digest: &str) -> Result<Vec<u8>, BoxError>;
    /// The JSON document of snapshot `digest`.
    fn snapshot(&self, digest: &str) -> Result<Vec<u8>, BoxError>;
}

/// Writes `snapshot` under `work` (its tree is `work.tree(digest)`), fetching the blobs the
/// cache lacks from `blobs`; returns the tree's path. A tree already there is reused as is.
///
/// The tree is built in a temporary directory and renamed into place at the end, so a killed
/// agent leaves no half tree under the final name, and two processes materialising the same
/// snapshot at once both return one complete tree (the second rename loses and its copy is
/// removed). The snapshot is validated first: hostile paths (absolute, `..`, below a link) are
/// refused before anything is written.
pub fn materialise(
    snapshot: &Snapshot,
    work: &WorkDir,
    blobs: &dyn BlobSource,
) -> Result<PathBuf, SnapshotError> {
    let digest = snapshot.digest();
    let tree = work.tree(&digest)?;
    if tree.is_dir() {
        tracing::debug!(snapshot = %digest, "already materialised");
        return Ok(tree);
    }
    snapshot.validate()?;
    let cache = BlobCache::new(work);
    let temp = work.temp();
    std::fs::create_dir(&temp).map_err(SnapshotError::io(&temp, "cannot create it"))?;
    let written = write_entries(snapshot, &temp, &cache, blobs);
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&temp);
        return Err(e);
    }
    if rename_into_place(&temp, &tree)? {
        tracing::info!(snapshot = %digest, files = snapshot.entries.len(), bytes = snapshot.total_size(), "snapshot materialised");
    }
    Ok(tree)
}

fn write_entries(
    snapshot: &Snapshot,
    temp: &std::path::Path,
    cache: &BlobCache<'_>,
    blobs: &dyn BlobSource,
) -> Result<(), SnapshotError> {
    for entry in &snapshot.entries {
        let path = temp.join(&entry.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(SnapshotError::io(parent, "cannot create the directory"))?;
        }
        let blob = cache.get(&entry.digest, blobs)?;
        match entry.kind {
            EntryKind::File => {
                std::fs::copy(&blob, &path).map_err(SnapshotError::io(&path, "cannot write it"))?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.mode))
                    .map_err(SnapshotError::io(&path, "cannot set its mode"))?;
            }
            EntryKind::Symlink => {
                let target = std::fs::read(&blob)
                    .map_err(SnapshotError::io(&blob, "cannot read the blob"))?;
                let target = std::ffi::OsString::from(
                    <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&target),
                );
                std::os::unix::fs::symlink(&target, &path)
                    .map_err(SnapshotError::io(&path, "cannot create the link"))?;
            }
        }
    }
    Ok(())
}
