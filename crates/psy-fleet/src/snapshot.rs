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
    /// agent's own directory for snapshots, outside any project) unless it is there already:
    /// the same digest gives the same directory, so a snapshot is materialised once per
    /// agent. The agent loads the job's manifest from it and runs its tests there.
    fn materialise(&self, digest: &str, work_dir: &Path) -> Result<PathBuf, SnapshotError>;
}
