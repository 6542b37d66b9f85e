//! Why a run could not be prepared: either something the user must fix before anything runs
//! (a manifest asking more than the host gives, another psy holding the project: [`is_usage`])
//! or a failure of the host (the store, the sandbox, the file system).
//!
//! [`is_usage`]: PrepareError::is_usage

use super::guarantees::Unenforceable;
use psy_config::ConfigError;
use psy_sandbox::SandboxError;
use psy_store::StoreError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("{}: host.rootfs = {rootfs:?}: a separate root filesystem is not supported yet; remove the key to run on the host root (read-only)", manifest.display())]
    RootfsUnsupported { manifest: PathBuf, rootfs: PathBuf },
    /// The host file, a test that does not fit the machine, or privileges this psy lacks.
    #[error(transparent)]
    Host(#[from] ConfigError),
    #[error("test `{test}` ({origin}): {key} lists {count} directories, at most {max}")]
    TooManyDirectories {
        test: String,
        origin: String,
        key: &'static str,
        count: usize,
        max: usize,
    },
    #[error("test `{test}` ({origin}): {count} volumes, at most {max}")]
    TooManyVolumes {
        test: String,
        origin: String,
        count: usize,
        max: usize,
    },
    /// An image a test names cannot be used (`crate::images::resolve`).
    #[error("{0}")]
    Image(String),
    #[error("test `{test}` ({origin}): {key} = {}: {problem}", dir.display())]
    BadDirectory {
        test: String,
        origin: String,
        key: &'static str,
        dir: PathBuf,
        problem: &'static str,
    },
    #[error(
        "{} test{} ask{} for `privileged = true` (host root's powers, no sandbox hardening): {}; \
         run with --allow-privileged to let them, or remove the key",
        tests.len(),
        if tests.len() == 1 { "" } else { "s" },
        if tests.len() == 1 { "s" } else { "" },
        tests.join(", ")
    )]
    PrivilegedNotAllowed {
        /// `id (origin)` of each.
        tests: Vec<String>,
    },
    #[error("another psy is running in {} (one run per project at a time)", project.display())]
    Locked { project: PathBuf },
    #[error("another psy agent uses the work dir {} (one agent per work dir: give each its own --work-dir)", work_dir.display())]
    WorkDirLocked { work_dir: PathBuf },
    #[error("locking {}", state.display())]
    Lock {
        state: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the store {}", path.display())]
    OpenStore {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Gc(#[from] GcError),
    #[error("preparing the sandbox")]
    Sandbox(#[source] SandboxError),
    /// Strict mode: [`Unenforceable::details`] names each gap and the tests asking.
    #[error(transparent)]
    Unenforceable(Unenforceable),
}

impl PrepareError {
    /// Whether the user must change the manifest, the flags or the moment (exit 2, nothing
    /// ran), rather than psy or the host having failed.
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            PrepareError::Lock { .. }
                | PrepareError::OpenStore { .. }
                | PrepareError::Gc(_)
                | PrepareError::Sandbox(_)
        )
    }
}

/// Why cleaning up after dead psy processes failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Cgroups(#[from] SandboxError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
