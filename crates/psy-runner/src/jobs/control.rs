//! How a local run is controlled beyond running every test once: repetitions (`--repeat N`,
//! `--until-fail`) and `--fail-fast` (stop the run at the first failing test).
//!
//! Repetitions are recorded as attempts of the test numbered on from the previous repetition's
//! last one (repetition 2 of a test without retries is attempt 2), so `psy history`, expected
//! durations and flakiness figures see every one. The test's verdict is the first failing
//! repetition's, else `flaky` if a repetition needed a retry, else `pass`.

use psy_model::TestStatus;

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
pub(crate) struct Repetitions {
    /// Repetitions finished so far.
    done: u32,
    /// Number of the current repetition's first attempt (0 before the first one: attempt 1).
    first_attempt: u32,
    /// Verdict over the finished repetitions.
    verdict: Option<TestStatus>,
}

/// What happens after an attempt that the retry rules let stand.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Start the next repetition as this attempt number.
    Repeat(u32),
    /// The test is done, with this verdict.
    Done(TestStatus),
}

impl Repetitions {
    /// Attempts made in the current repetition, counting `attempt`.
    pub(crate) fn tries(&self, attempt: u32) -> u32 {
        attempt + 1 - self.first_attempt.max(1)
    }

    /// Ends the current repetition with its verdict; says whether another one starts.
    pub(crate) fn end(
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
