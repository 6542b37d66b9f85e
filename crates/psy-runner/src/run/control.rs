//! What follows a finished attempt: a retry, the next repetition (`--repeat N`, `--until-fail`)
//! or the test's verdict, and `--fail-fast` (stop the run at the first failing test).
//!
//! Repetitions are recorded as attempts of the test numbered on from the previous repetition's
//! last one (repetition 2 of a test without retries is attempt 2), so `psy history`, expected
//! durations and flakiness figures see every one. The test's verdict is the first failing
//! repetition's, else `flaky` if a repetition needed a retry, else `pass`.

use super::{RunError, RunLoop};
use crate::attempt;
use psy_model::{AttemptResult, RunEvent, TestResult, TestStatus};
use psy_scheduler::Job;

/// How the run is controlled beyond running every test once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunControl {
    /// Stop at the first test whose verdict is a failure.
    pub fail_fast: bool,
    /// A flaky verdict counts as a failure (for `fail_fast` and `until_fail`).
    pub flaky_fail: bool,
    /// Repetitions of each test (at least 1).
    pub repeat: u32,
    /// Stop repeating (and stop the run, as `fail_fast`) when a repetition fails.
    pub until_fail: bool,
}

impl Default for RunControl {
    fn default() -> Self {
        RunControl {
            fail_fast: false,
            flaky_fail: false,
            repeat: 1,
            until_fail: false,
        }
    }
}

/// Attempt numbers of one test stay at most this: `repeat x (retries + 1)` must fit.
pub const MAX_ATTEMPTS_PER_TEST: u32 = (1 << 16) - 1;

/// Where one test is in its repetitions.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Repetitions {
    /// Repetitions finished so far.
    done: u32,
    /// Number of the current repetition's first attempt (0 before the first one: attempt 1).
    first_attempt: u32,
    /// Verdict over the finished repetitions.
    verdict: Option<TestStatus>,
}

/// What happens after an attempt that the retry rules let stand.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Start the next repetition as this attempt number.
    Repeat(u32),
    /// The test is done, with this verdict.
    Done(TestStatus),
}

impl Repetitions {
    /// Attempts made in the current repetition, counting `attempt`.
    pub(super) fn tries(&self, attempt: u32) -> u32 {
        attempt + 1 - self.first_attempt.max(1)
    }

    /// Ends the current repetition with its verdict; says whether another one starts.
    pub(super) fn end(
        &mut self,
        repetition: TestStatus,
        attempt: u32,
        control: &RunControl,
        stopping: bool,
    ) -> Next {
        self.done += 1;
        let failed = !repetition.is_success(control.flaky_fail);
        self.verdict = Some(match self.verdict {
            Some(v) if rank(v) >= rank(repetition) => v,
            _ => repetition,
        });
        let more = self.done < control.repeat && !stopping && !(control.until_fail && failed);
        if more && attempt < MAX_ATTEMPTS_PER_TEST {
            self.first_attempt = attempt + 1;
            Next::Repeat(attempt + 1)
        } else {
            Next::Done(self.verdict.unwrap_or(repetition))
        }
    }
}

/// Worse verdicts rank higher; among failures the first one stays.
fn rank(status: TestStatus) -> u8 {
    match status {
        TestStatus::Skipped => 0,
        TestStatus::Pass => 1,
        TestStatus::Flaky => 2,
        _ => 3,
    }
}

impl RunLoop<'_> {
    /// Records one finished attempt, then either queues a retry or settles the test's verdict.
    pub(super) fn settle(
        &mut self,
        test_idx: usize,
        result: AttemptResult,
    ) -> Result<(), RunError> {
        let run_id = self.run_id.clone();
        self.write(|store| store.record_attempt(&run_id, &result))?;
        let test = &self.tests[test_idx];
        self.durations[test_idx] += result.duration_ms;
        let (attempt, status) = (result.attempt, result.status);
        (self.emit)(&RunEvent::AttemptFinished { result });
        let retries = self.retries.unwrap_or(test.retries);
        let allowed = retries.min(psy_model::bounds::MAX_RETRIES) + 1;
        let tries = self.repetitions[test_idx].tries(attempt);
        if !status.is_final_success()
            && tries < allowed
            && attempt < MAX_ATTEMPTS_PER_TEST
            && !self.stopping()
        {
            (self.emit)(&RunEvent::AttemptRetrying {
                test_id: test.id.clone(),
                next_attempt: attempt + 1,
            });
            return self.queue(test_idx, attempt + 1, None);
        }
        let repetition = TestStatus::from_last_attempt(status, tries);
        let stop_warning = self.maybe_fail_fast(test_idx, repetition);
        let (control, stopping) = (self.control, self.stopping());
        let status = match self.repetitions[test_idx].end(repetition, attempt, &control, stopping) {
            Next::Repeat(next) => return self.queue(test_idx, next, self.expected[test_idx]),
            Next::Done(status) => status,
        };
        let test = &self.tests[test_idx];
        let verdict = TestResult {
            test_id: test.id.clone(),
            status,
            attempts: attempt,
            duration_ms: self.durations[test_idx],
        };
        let (name, variant) = (test.name.clone(), test.variant.clone());
        self.write(|store| store.record_test(&run_id, &verdict, &name, variant.as_deref()))?;
        self.summary.count(verdict.status);
        (self.emit)(&RunEvent::TestFinished { result: verdict });
        if let Some(warning) = stop_warning {
            (self.emit)(&warning);
        }
        Ok(())
    }

    /// Queues attempt number `attempt` of a test (a retry or the next repetition).
    pub(super) fn queue(
        &mut self,
        test: usize,
        attempt: u32,
        expected: Option<std::time::Duration>,
    ) -> Result<(), RunError> {
        let spec = &self.tests[test];
        let job = Job {
            key: attempt::job_key(test, attempt),
            resources: spec.resources.clone(),
            expected,
        };
        self.scheduler
            .push(job)
            .map_err(|e| RunError::Unschedulable {
                test: spec.id.to_string(),
                message: e.to_string(),
            })
    }

    /// Whether the run takes no new attempt: Ctrl-C, a full disk, or a failure under fail-fast.
    pub(super) fn stopping(&self) -> bool {
        self.interrupted || self.disk_full.is_some() || self.failed_fast.is_some()
    }

    /// After a repetition of `test` failed: with `--fail-fast` or `--until-fail`, nothing more
    /// starts and the running attempts are killed (they are not recorded: see `collect`).
    /// Returns the warning to emit once the test's verdict is out.
    pub(super) fn maybe_fail_fast(&mut self, test: usize, status: TestStatus) -> Option<RunEvent> {
        let control = self.control;
        if !(control.fail_fast || control.until_fail)
            || status.is_success(control.flaky_fail)
            || self.stopping()
        {
            return None;
        }
        let id = self.tests[test].id.clone();
        tracing::debug!(test = %id, "fail-fast: stopping the run");
        let running = self.in_flight.len();
        for f in &mut self.in_flight {
            f.cancelled = true;
            f.handle.kill();
        }
        let flag = if control.fail_fast {
            "--fail-fast"
        } else {
            "--until-fail"
        };
        let message = format!(
            "{flag}: stopping after {id} ({status}); {running} running test{} cancelled, nothing more starts",
            if running == 1 { "" } else { "s" }
        );
        self.failed_fast = Some(message.clone());
        Some(RunEvent::Warning { message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TestStatus::{Fail, Flaky, Pass, Timeout};

    fn control(repeat: u32, until_fail: bool) -> RunControl {
        RunControl {
            repeat,
            until_fail,
            ..RunControl::default()
        }
    }

    #[test]
    fn repeats_then_gives_the_worst_verdict() {
        let c = control(3, false);
        let mut r = Repetitions::default();
        assert_eq!(r.tries(1), 1);
        assert_eq!(r.end(Pass, 1, &c, false), Next::Repeat(2));
        assert_eq!(r.tries(2), 1);
        // Repetition 2 fails once, passes on retry (attempt 3): flaky.
        assert_eq!(r.tries(3), 2);
        assert_eq!(r.end(Flaky, 3, &c, false), Next::Repeat(4));
        assert_eq!(r.end(Pass, 4, &c, false), Next::Done(Flaky));
    }

    #[test]
    fn first_failure_stays_and_until_fail_stops_there() {
        let mut r = Repetitions::default();
        let c = control(5, false);
        assert_eq!(r.end(Timeout, 1, &c, false), Next::Repeat(2));
        assert_eq!(r.end(Fail, 2, &c, false), Next::Repeat(3));
        assert_eq!(r.end(Pass, 3, &c, true), Next::Done(Timeout));
        let mut r = Repetitions::default();
        let c = control(1000, true);
        assert_eq!(r.end(Pass, 1, &c, false), Next::Repeat(2));
        assert_eq!(r.end(Fail, 2, &c, false), Next::Done(Fail));
    }

    #[test]
    fn once_by_default() {
        let mut r = Repetitions::default();
        assert_eq!(
            r.end(Pass, 1, &RunControl::default(), false),
            Next::Done(Pass)
        );
    }
}
