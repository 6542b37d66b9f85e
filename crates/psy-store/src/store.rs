//! The [`Store`] trait: what the runner and the CLI need from a results database.

use crate::{RunRecord, StoreError};
use psy_model::events::RunSummary;
use psy_model::{AttemptResult, RunId, TestId, TestResult};
use std::collections::HashMap;
use std::time::Duration;

/// How many recent pass/fail attempts of a test feed its expected duration.
pub const HISTORY_WINDOW: usize = 20;

/// A results database. Writes go through one instance per `psy run`; readers (`psy show`) open
/// their own instance and may read while a run writes.
pub trait Store: Send {
    /// Records a new run (normally in [`crate::RunState::Running`] with `summary.total` set).
    fn begin_run(&mut self, run: &RunRecord) -> Result<(), StoreError>;

    /// Records one finished attempt. Committed before returning: an attempt is durable as soon
    /// as it ends, even if psy is killed right after.
    fn record_attempt(&mut self, run_id: &RunId, result: &AttemptResult) -> Result<(), StoreError>;

    /// Records the verdict on one test id after all its attempts.
    fn record_test(
        &mut self,
        run_id: &RunId,
        result: &TestResult,
        name: &str,
        variant: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Ends the run with its totals, as [`crate::RunState::Finished`] or, when it was stopped
    /// on purpose, [`crate::RunState::Interrupted`].
    fn finish_run(
        &mut self,
        run_id: &RunId,
        summary: &RunSummary,
        finished_at_ms: u64,
        state: crate::RunState,
    ) -> Result<(), StoreError>;

    /// Attaches to a run a note on why it ended as it did (see [`RunRecord::note`]).
    fn note_run(&mut self, run_id: &RunId, note: &str) -> Result<(), StoreError>;

    /// Median duration of the last [`HISTORY_WINDOW`] attempts of each test id that ended
    /// pass or fail (errors, timeouts and OOM kills say nothing about how long a test takes);
    /// for ids without such attempts, the duration imported last ([`Store::import_durations`]).
    /// Ids never seen are absent. One query, whatever the number of ids.
    fn expected_durations(&self) -> Result<HashMap<TestId, Duration>, StoreError>;

    /// Merges durations measured elsewhere (`psy import`): each replaces the one imported
    /// before for its id, and serves only while this store has no pass/fail attempt of the id.
    /// Returns how many were imported.
    fn import_durations(
        &mut self,
        durations: &HashMap<TestId, Duration>,
    ) -> Result<usize, StoreError>;

    /// Ids with recorded attempts that start with `prefix`, sorted, at most `limit` of them.
    fn test_ids(&self, prefix: &str, limit: usize) -> Result<Vec<TestId>, StoreError>;

    /// Marks runs left "running" by a killed psy as aborted; returns how many. Meant to be
    /// called at every start, before `begin_run`: it cannot tell a dead psy from a live one,
    /// so two concurrent runs on one database must be prevented by the caller.
    fn abort_unfinished_runs(&mut self) -> Result<usize, StoreError>;

    /// The `limit` most recent runs, newest first.
    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError>;

    /// The run with this id, or with this unique id prefix (`20261126-06` is enough if no other
    /// run starts so). An exact id always wins over longer ids it prefixes.
    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// The most recently started run.
    fn latest_run(&self) -> Result<Option<RunRecord>, StoreError>;

    /// The verdicts of one run, ordered by test id.
    fn test_results(&self, run_id: &RunId) -> Result<Vec<TestResult>, StoreError>;

    /// Every attempt of one run, ordered by test id then attempt number.
    fn attempts(&self, run_id: &RunId) -> Result<Vec<AttemptResult>, StoreError>;

    /// The `limit` most recent attempts of one test id across runs, newest first.
    fn history(
        &self,
        test_id: &TestId,
        limit: usize,
    ) -> Result<Vec<(RunId, AttemptResult)>, StoreError>;
}
