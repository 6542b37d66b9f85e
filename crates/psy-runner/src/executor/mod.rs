//! How an attempt is executed: the [`Executor`] trait and its implementations. The run loop only
//! needs a file descriptor to wait on, a way to kill, and the outcome; a remote agent or another
//! isolation technology plugs in here.

mod container;
mod scenario;
mod warm;

pub use container::ContainerExecutor;
pub(crate) use warm::result_file as warm_result_file;

use psy_model::{ExitInfo, RunId, TestId, TestSpec};
use std::fs::File;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

/// One attempt to start.
#[derive(Debug)]
pub struct AttemptRequest<'a> {
    pub run_id: &'a RunId,
    pub test: &'a TestSpec,
    /// What the run keeps the attempt under: the test's id, or its job's
    /// [`crate::jobs::JobOrigin::record_as`] (its volumes are found by it).
    pub record_as: &'a TestId,
    pub attempt: u32,
    /// Exclusive cores placed by the scheduler, if any.
    pub cores: Option<Vec<u32>>,
    /// The command to run: the test's, with its adapter's result file filled in.
    pub argv: Vec<String>,
    /// The complete environment of the test.
    pub env: Vec<(String, String)>,
    pub stdout: File,
    pub stderr: File,
    /// Writable per-attempt directory (exists).
    pub scratch: PathBuf,
    /// The project (manifest) directory, visible read-only.
    pub project_dir: PathBuf,
    /// Unique within the run; used to name the attempt's cgroup.
    pub key: u64,
    /// Where the attempt's stdout log is: a scenario keeps its nodes' logs and its timeline
    /// beside it (`layout::scenario_file`).
    pub stdout_path: PathBuf,
}

/// What an executor measured when the attempt ended.
#[derive(Debug, Default)]
pub struct ExecOutcome {
    pub exit: ExitInfo,
    /// Why the attempt could not run (sandbox set-up, command not found...).
    pub error: Option<String>,
    pub wall_time: Duration,
    pub cpu_time: Option<Duration>,
    pub peak_memory_bytes: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    pub io_read_ops: Option<u64>,
    pub io_write_ops: Option<u64>,
    /// `(sent, received)` bytes on the test's own network interface, if it had one.
    pub network_bytes: Option<(u64, u64)>,
    pub oom_killed: bool,
    /// The attempt failed for a reason beside its exit status (a scenario's node that must not
    /// exit did): a failure with this message even if the test exited 0.
    pub failure: Option<String>,
    /// The image the attempt ran in (`ResolvedImage::id`); `None`: the host's root.
    pub image: Option<String>,
}

/// A started attempt.
pub trait Running: std::fmt::Debug {
    /// Readable when the attempt has ended.
    fn wait_fd(&self) -> RawFd;
    /// Kills everything the attempt started.
    fn kill(&mut self);
    /// Moves the attempt onto these cores (exclusive policy: the shared cores changed).
    fn set_cores(&mut self, cores: &[u32]);
    /// Reaps and measures; blocks until the attempt is gone.
    fn finish(self: Box<Self>) -> ExecOutcome;
}

/// Starts attempts.
pub trait Executor {
    fn start(&mut self, request: AttemptRequest<'_>) -> Result<Box<dyn Running>, String>;
    /// Starts several attempts, one result per request in order (executors that can overlap
    /// the launches override this).
    fn start_many(
        &mut self,
        requests: Vec<AttemptRequest<'_>>,
    ) -> Vec<Result<Box<dyn Running>, String>> {
        requests.into_iter().map(|r| self.start(r)).collect()
    }
    /// Guarantees this executor cannot give on this host (reported once per run).
    fn warnings(&self) -> Vec<String>;
    /// Releases run-wide resources after the last attempt.
    fn close(&mut self);
}
