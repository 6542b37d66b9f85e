//! Where a run's attempts come from. The engine asks a [`JobSource`] for jobs, hands them to
//! the scheduler, runs what it places, records each attempt, and tells the source how each one
//! ended; the source answers with what follows (a retry, the test's verdict, a stop).
//!
//! [`LocalJobs`] is `psy run`'s source: the selected tests, with their retries, repetitions
//! and fail-fast. A fleet agent's source (`psy-agent`: attempts leased from the server, claimed
//! as free capacity allows) implements the same trait: it offers jobs a few at a time from
//! many runs and projects (each job names its [`JobOrigin`]), says that more may come later,
//! wakes the loop through [`JobSource::wake_fd`] when they do, withdraws jobs whose lease moved
//! ([`JobSource::withdrawn`]), and leaves retries and verdicts to the server.

mod control;
mod local;

pub use control::{RunControl, MAX_ATTEMPTS_PER_TEST};
pub use local::LocalJobs;

use psy_model::{AttemptResult, TestId, TestResult, TestSpec};
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One attempt to run: a test and its attempt number.
#[derive(Clone, Debug)]
pub struct AttemptJob {
    /// Unique within the run, chosen by the source; the scheduler breaks ties between equal
    /// jobs by it, lower first.
    pub key: u64,
    pub test: Arc<TestSpec>,
    /// 1 for a test's first attempt; retries and repetitions count on.
    pub attempt: u32,
    /// How long it should take (the scheduler starts the longest first); `None`: unknown.
    pub expected: Option<Duration>,
    /// Where the job comes from when the engine run is not one project's (a fleet agent's
    /// leases); `None`: the run's own project, recorded under the test's id.
    pub origin: Option<Arc<JobOrigin>>,
}

/// The project of a job and the name its attempt is kept under, for engine runs that take
/// jobs from many runs and projects (a fleet agent): two server runs may hold tests of the
/// same id, and the same attempt of a test may come back after its lease moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobOrigin {
    /// The test's project (its manifest's directory): visible read-only in the container,
    /// its `.psyduck` masked.
    pub project_dir: PathBuf,
    /// Unique in the engine run: the attempt's record in the store, its log blobs and its
    /// volumes are addressed by it instead of the test's id. The test itself still sees its
    /// own id (`PSY_TEST_ID`, its hostname).
    pub record_as: TestId,
}

/// What a source has for the engine when asked.
#[derive(Debug)]
pub enum Offer {
    /// Jobs to schedule (the scheduler decides when each starts); more may come after an
    /// attempt ends.
    Now(Vec<AttemptJob>),
    /// Nothing new now; more may come when a running attempt ends.
    Later,
    /// Nothing more will come: the run ends when its running attempts have.
    Done,
}

/// What follows a finished attempt, in the order the engine acts on it.
#[derive(Debug, Default)]
pub struct Settled {
    /// The test runs again as this attempt number (a retry; the source offers it next).
    pub retry: Option<u32>,
    /// Stop the run: nothing more starts and the running attempts are cancelled. The reason
    /// names the cause (`--fail-fast: stopping after t (fail)`).
    pub stop: Option<String>,
    /// The test's verdict, when this was its last attempt.
    pub verdict: Option<TestResult>,
}

/// A run's supply of jobs, and the keeper of what each attempt means for its test.
pub trait JobSource {
    /// How many tests the run settles (its summary's total).
    fn total(&self) -> usize;

    /// Jobs available now. Not asked while the run is stopping.
    fn offer(&mut self) -> Offer;

    /// An attempt of `job` ended with `result` (already recorded). `stopping`: the run takes
    /// no new attempt (Ctrl-C, a full disk, an earlier stop), so nothing should be retried.
    fn finished(&mut self, job: &AttemptJob, result: &AttemptResult, stopping: bool) -> Settled;

    /// An offered job that will not finish: killed or never started because the run stopped,
    /// or withdrawn. It gets no verdict (a local test counts as not run; a lease is left to
    /// expire).
    fn cancelled(&mut self, _job: &AttemptJob) {}

    /// Readable when the source may have new jobs or withdrawals while the loop waits; the
    /// source drains it in [`Self::offer`]. With one, a run whose source says
    /// [`Offer::Later`] while nothing runs waits for it instead of ending (an agent waits for
    /// work). `None` (a local run): only a finished attempt brings more.
    fn wake_fd(&self) -> Option<RawFd> {
        None
    }

    /// Keys of offered jobs that must not run any more (their lease moved to another agent,
    /// their run was cancelled): the loop drops them if they have not started and kills them
    /// if they have; either way [`Self::cancelled`] follows (or [`Self::finished`], if the
    /// attempt ended before it could be killed). Asked before every offer.
    fn withdrawn(&mut self) -> Vec<u64> {
        Vec::new()
    }
}
