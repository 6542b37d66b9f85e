//! What each store operation is called in error messages, shared so every backend's errors
//! name the run, test or prefix in the same words.

use psy_model::{AttemptResult, RunId, TestId, TestResult};

pub(crate) fn begin_run(run_id: &RunId) -> String {
    format!("starting run {run_id}")
}

pub(crate) fn record_attempt(run_id: &RunId, a: &AttemptResult) -> String {
    format!(
        "recording attempt {} of test {} in run {run_id}",
        a.attempt, a.test_id
    )
}

pub(crate) fn record_test(run_id: &RunId, t: &TestResult) -> String {
    format!("recording the result of test {} in run {run_id}", t.test_id)
}

pub(crate) fn finish_run(run_id: &RunId) -> String {
    format!("finishing run {run_id}")
}

pub(crate) fn note_run(run_id: &RunId) -> String {
    format!("noting why run {run_id} ended")
}

pub(crate) const EXPECTED_DURATIONS: &str = "computing expected test durations";
pub(crate) const IMPORTED_DURATIONS: &str = "reading imported test durations";

pub(crate) fn import_durations(n: usize) -> String {
    format!("importing {n} test durations")
}

pub(crate) fn test_ids(prefix: &str) -> String {
    format!("looking up tests starting with {prefix:?}")
}

pub(crate) const ABORT_UNFINISHED: &str = "marking unfinished runs as aborted";
pub(crate) const LIST_RUNS: &str = "listing runs";

pub(crate) fn look_up_run(prefix: &str) -> String {
    format!("looking up run {prefix}")
}

pub(crate) fn test_results(run_id: &RunId) -> String {
    format!("reading the test results of run {run_id}")
}

pub(crate) fn attempts(run_id: &RunId) -> String {
    format!("reading the attempts of run {run_id}")
}

pub(crate) fn history(test_id: &TestId) -> String {
    format!("reading the history of test {test_id}")
}
