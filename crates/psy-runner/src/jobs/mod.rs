//! Where a run's attempts come from. The engine asks a [`JobSource`] for jobs, hands them to
//! the scheduler, runs what it places, records each attempt, and tells the source how each one
//! ended; the source answers with what follows (a retry, the test's verdict, a stop).
//!
//! [`LocalJobs`] is `psy run`'s source: the selected tests, with their retries, repetitions
//! and fail-fast. A fleet agent's source (attempts leased from the server, claimed as free
//! capacity allows) implements the same trait: it may offer jobs a few at a time, say that
//! more may come later, and keeps the verdicts on its side.

mod control;
mod local;

pub use control::{RunControl, MAX_ATTEMPTS_PER_TEST};
pub use local::LocalJobs;

use psy_model::{AttemptResult, TestResult, TestSpec};
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

    /// An offered job that will not finish: killed or never started because the run stopped.
    /// It gets no verdict (a local test counts as not run; a lease would be given back).
    fn cancelled(&mut self, _job: &AttemptJob) {}
}
