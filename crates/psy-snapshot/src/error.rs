//! What can go wrong building, materialising or preparing a snapshot, naming the path, digest
//! or command at fault.

use std::path::PathBuf;

/// Any error of a [`crate::BlobSource`] (the server's, a test's).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed snapshot operation.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// A file of the tree could not be read, written or listed.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// `git` failed listing the tree.
    #[error("{}: `git {args}` failed: {detail}", dir.display())]
    Git {
        dir: PathBuf,
        args: String,
        detail: String,
    },
    /// A snapshot that must not be materialised: a hostile or clashing path, a bad digest.
    #[error("snapshot {snapshot}: {problem}")]
    Invalid { snapshot: String, problem: String },
    /// Bytes whose sha256 is not the one asked for.
    #[error("{what} {expected}: the content's digest is {actual}")]
    DigestMismatch {
        what: &'static str,
        expected: String,
        actual: String,
    },
    /// The snapshot's document is not readable JSON of the known format.
    #[error("snapshot {snapshot}: unreadable: {reason}")]
    Unreadable { snapshot: String, reason: String },
    /// A blob or snapshot could not be had from the source.
    #[error("fetching {what} {digest}: {source}")]
    Fetch {
        what: &'static str,
        digest: String,
        #[source]
        source: BoxError,
    },
    /// A file changed between being listed and being read for upload.
    #[error("{}: changed while the snapshot was being sent (submit again)", path.display())]
    Changed { path: PathBuf },
    /// The manifest inside the snapshot could not be loaded.
    #[error("snapshot {snapshot}: {source}")]
    Manifest {
        snapshot: String,
        #[source]
        source: Box<psy_config::ConfigError>,
    },
    /// `[prepare]`'s command failed (now or on an earlier job of this snapshot on this agent).
    #[error("snapshot {snapshot}: [prepare] `{command}` {how}; its output is in {} (last lines: {tail})", log.display())]
    PrepareFailed {
        snapshot: String,
        command: String,
        /// `exited with status 2`, `was killed by signal 9`, `timed out after 30m`.
        how: String,
        log: PathBuf,
        /// The end of its output, for a one-line message.
        tail: String,
    },
}

impl SnapshotError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        what: &'static str,
    ) -> impl FnOnce(std::io::Error) -> SnapshotError {
        let path = path.into();
        move |source| SnapshotError::Io { path, what, source }
    }
}
