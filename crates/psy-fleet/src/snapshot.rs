//! [`SnapshotMaterialiser`]: how an agent turns a job's `ProjectSource::Snapshot` into a
//! directory it can run the project's tests in. `psy-snapshot` implements it (fetching the
//! snapshot's files from the server by content address); an agent without one reports such
//! jobs as errors.

use std::path::{Path, PathBuf};

/// Why a snapshot could not be made into a directory (the message names the snapshot).
pub type SnapshotError = Box<dyn std::error::Error + Send + Sync>;

/// Makes the files of a snapshot appear in a directory of this machine.
pub trait SnapshotMaterialiser: Send + Sync + std::fmt::Debug {
    /// The directory holding snapshot `digest` (`sha256:...`), made under `work_dir` (the
    /// agent's work dir) unless it is there already: the same digest gives the same directory,
    /// so a snapshot is materialised once per agent; the manifest at `manifest` (relative to the
    /// snapshot's root) has had its `[prepare]` run there once. The agent loads that manifest
    /// and runs its tests there.
    fn materialise(
        &self,
        digest: &str,
        manifest: &str,
        work_dir: &Path,
    ) -> Result<PathBuf, SnapshotError>;
}
