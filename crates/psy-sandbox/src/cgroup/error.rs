//! The one error type of the cgroup layer: every variant names the file and what was being done.

use std::path::PathBuf;
use std::time::Duration;

/// A file-system operation on cgroupfs (or `/proc`), for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FsOp {
    Read,
    /// Writing this value.
    Write(String),
    CreateDir,
    RemoveDir,
    ListDir,
    Stat,
    /// Following a symlink (e.g. `/sys/dev/block/MAJ:MIN`) to its target.
    ResolveLink,
}

impl std::fmt::Display for FsOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsOp::Read => f.write_str("read"),
            FsOp::Write(value) => write!(f, "write {value:?} to"),
            FsOp::CreateDir => f.write_str("create directory"),
            FsOp::RemoveDir => f.write_str("remove directory"),
            FsOp::ListDir => f.write_str("list directory"),
            FsOp::Stat => f.write_str("stat"),
            FsOp::ResolveLink => f.write_str("resolve link"),
        }
    }
}

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: FsOp,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse {}: expected {expected}, found {found:?}", path.display())]
    Parse {
        path: PathBuf,
        expected: &'static str,
        found: String,
    },
    #[error("invalid cgroup name {name:?}: {why}")]
    InvalidName { name: String, why: &'static str },
    #[error(
        "processes {pids:?} still in {} after killing them for {waited:?}",
        path.display()
    )]
    KillTimeout {
        path: PathBuf,
        pids: Vec<u32>,
        waited: Duration,
    },
    #[error("refusing to kill the group {}: it contains this psy process itself", path.display())]
    ContainsCaller { path: PathBuf },
    #[error(
        "{} is on device {major}:{minor}, which is not a block device (see {})",
        path.display(),
        sysfs.display()
    )]
    NotABlockDevice {
        path: PathBuf,
        major: u32,
        minor: u32,
        /// The `/sys/dev/block/MAJ:MIN` entry that is missing.
        sysfs: PathBuf,
    },
    #[error(
        "group {} has no {controller} controller directory (it was created without {what}); \
         create the group with them instead of setting them later",
        group.display()
    )]
    MissingController {
        controller: &'static str,
        /// What needed it, e.g. "io limits".
        what: &'static str,
        group: PathBuf,
    },
    #[error("cannot send SIGKILL to pid {pid} (in {}): {source}", path.display())]
    Signal {
        pid: u32,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CgroupError {
    pub(crate) fn io(op: FsOp, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CgroupError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The OS error number behind an I/O failure, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CgroupError::Io { source, .. } | CgroupError::Signal { source, .. } => {
                source.raw_os_error()
            }
            _ => None,
        }
    }
}
