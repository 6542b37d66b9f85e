//! The event stream a run emits. Reporters (human, JSON lines, JUnit), the store writer and,
//! later, a remote agent's uplink are all consumers of this one stream.
//!
//! The JSON form (`psy run --message-format json`) is one object per line, tagged by `"type"`;
//! the schema is documented in `docs/events.md`. Adding fields is compatible; renaming is not.

use crate::{AttemptResult, Resources, RunId, TestId, TestResult, TestStatus};
use serde::{Deserialize, Serialize};

/// Totals at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub flaky: usize,
    pub timed_out: usize,
    pub oom: usize,
    pub errors: usize,
    /// Tests their own runner did not run (`#[ignore]`, `pytest.skip`); they count as successes.
    #[serde(default)]
    pub skipped: usize,
    /// Tests never started because the run was cancelled.
    pub not_run: usize,
    pub duration_ms: u64,
}

impl RunSummary {
    /// Counts one finished test.
    pub fn count(&mut self, status: TestStatus) {
        match status {
            TestStatus::Pass => self.passed += 1,
            TestStatus::Fail => self.failed += 1,
            TestStatus::Flaky => self.flaky += 1,
            TestStatus::Timeout => self.timed_out += 1,
            TestStatus::Oom => self.oom += 1,
            TestStatus::Error => self.errors += 1,
            TestStatus::Skipped => self.skipped += 1,
        }
    }

    /// Tests that did not pass (flaky counted as failing only if `flaky_fails`).
    pub fn failures(&self, flaky_fails: bool) -> usize {
        self.failed
            + self.timed_out
            + self.oom
            + self.errors
            + self.not_run
            + if flaky_fails { self.flaky } else { 0 }
    }
}

/// Everything that happens during a run, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RunEvent {
    RunStarted {
        run_id: RunId,
        /// Test ids selected for this run.
        total: usize,
        /// Milliseconds since the Unix epoch.
        started_at_ms: u64,
        /// How long the run is expected to take (ms), simulated from the tests' recorded
        /// durations; absent when no selected test has any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_ms: Option<u64>,
    },
    /// A guarantee that cannot be enforced on this host (said once per run).
    Warning {
        message: String,
    },
    AttemptStarted {
        test_id: TestId,
        attempt: u32,
        resources: Resources,
        /// The attempt runs with host root's powers (`privileged = true`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        privileged: bool,
    },
    AttemptFinished {
        result: AttemptResult,
    },
    /// A failed attempt will be retried.
    AttemptRetrying {
        test_id: TestId,
        next_attempt: u32,
    },
    TestFinished {
        result: TestResult,
    },
    RunFinished {
        run_id: RunId,
        summary: RunSummary,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_json() {
        let e = RunEvent::Warning {
            message: "no cgroup".into(),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"type":"warning","message":"no cgroup"}"#);
        let back: RunEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn failures_respect_flaky_policy() {
        let mut s = RunSummary::default();
        s.count(TestStatus::Flaky);
        s.count(TestStatus::Pass);
        assert_eq!(s.failures(false), 0);
        assert_eq!(s.failures(true), 1);
    }
}
