//! `psy run`'s job source: the selected tests, first attempts in the order given, then the
//! retries and repetitions their results call for, and `--fail-fast`.

use super::control::{Next, Repetitions, RunControl, MAX_ATTEMPTS_PER_TEST};
use super::{AttemptJob, JobSource, Offer, Settled};
use psy_model::{AttemptResult, TestId, TestResult, TestSpec, TestStatus};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Attempt numbers stay below this, so a key encodes (test index, attempt).
const MAX_ATTEMPTS: u64 = 1 << 16;
const _: () = assert!((psy_model::bounds::MAX_RETRIES as u64) + 1 < MAX_ATTEMPTS);
const _: () = assert!((MAX_ATTEMPTS_PER_TEST as u64) < MAX_ATTEMPTS);

fn job_key(test: usize, attempt: u32) -> u64 {
    test as u64 * MAX_ATTEMPTS + u64::from(attempt)
}

fn test_of(key: u64) -> usize {
    (key / MAX_ATTEMPTS) as usize
}

/// The selected tests of a local run and where each one is.
#[derive(Debug)]
pub struct LocalJobs {
    tests: Vec<Arc<TestSpec>>,
    /// Each test's expected duration (repetitions are ranked by it; retries are not).
    expected: Vec<Option<Duration>>,
    /// Overrides every test's `retries` (`--retries`).
    retries: Option<u32>,
    control: RunControl,
    /// Jobs not offered yet.
    queue: Vec<AttemptJob>,
    repetitions: Vec<Repetitions>,
    /// Sum of attempt durations per test.
    durations: Vec<u64>,
    /// Offered jobs not finished or cancelled yet.
    outstanding: usize,
}

impl LocalJobs {
    /// First attempts of `tests` in their order, each with its expected duration from
    /// `expected` (the store's recent durations).
    pub fn new(
        tests: Vec<TestSpec>,
        expected: &HashMap<TestId, Duration>,
        retries: Option<u32>,
        control: RunControl,
    ) -> Self {
        let tests: Vec<Arc<TestSpec>> = tests.into_iter().map(Arc::new).collect();
        let expected: Vec<_> = tests.iter().map(|t| expected.get(&t.id).copied()).collect();
        let queue = tests
            .iter()
            .enumerate()
            .map(|(i, test)| AttemptJob {
                key: job_key(i, 1),
                test: Arc::clone(test),
                attempt: 1,
                expected: expected[i],
                origin: None,
            })
            .collect();
        let total = tests.len();
        LocalJobs {
            tests,
            expected,
            retries,
            control,
            queue,
            repetitions: vec![Repetitions::default(); total],
            durations: vec![0; total],
            outstanding: 0,
        }
    }

    fn push(&mut self, test: usize, attempt: u32, expected: Option<Duration>) {
        self.queue.push(AttemptJob {
            key: job_key(test, attempt),
            test: Arc::clone(&self.tests[test]),
            attempt,
            expected,
            origin: None,
        });
    }
}

impl JobSource for LocalJobs {
    fn total(&self) -> usize {
        self.tests.len()
    }

    fn offer(&mut self) -> Offer {
        if !self.queue.is_empty() {
            self.outstanding += self.queue.len();
            Offer::Now(std::mem::take(&mut self.queue))
        } else if self.outstanding > 0 {
            Offer::Later
        } else {
            Offer::Done
        }
    }

    fn finished(&mut self, job: &AttemptJob, result: &AttemptResult, stopping: bool) -> Settled {
        self.outstanding = self.outstanding.saturating_sub(1);
        let i = test_of(job.key);
        let test = Arc::clone(&self.tests[i]);
        self.durations[i] += result.duration_ms;
        let (attempt, status) = (result.attempt, result.status);
        let retries = self.retries.unwrap_or(test.retries);
        let allowed = retries.min(psy_model::bounds::MAX_RETRIES) + 1;
        let tries = self.repetitions[i].tries(attempt);
        if !status.is_final_success()
            && tries < allowed
            && attempt < MAX_ATTEMPTS_PER_TEST
            && !stopping
        {
            // A retry's duration is unknown to the scheduler: it ranks first.
            self.push(i, attempt + 1, None);
            return Settled {
                retry: Some(attempt + 1),
                ..Settled::default()
            };
        }
        let repetition = TestStatus::from_last_attempt(status, tries);
        let stop = self.stop_after(&test.id, repetition, stopping);
        let stopping = stopping || stop.is_some();
        let control = self.control;
        let status = match self.repetitions[i].end(repetition, attempt, &control, stopping) {
            Next::Repeat(next) => {
                self.push(i, next, self.expected[i]);
                return Settled::default();
            }
            Next::Done(status) => status,
        };
        Settled {
            retry: None,
            stop,
            verdict: Some(TestResult {
                test_id: test.id.clone(),
                status,
                attempts: attempt,
                duration_ms: self.durations[i],
            }),
        }
    }

    fn cancelled(&mut self, _job: &AttemptJob) {
        self.outstanding = self.outstanding.saturating_sub(1);
    }
}

impl LocalJobs {
    /// With `--fail-fast` or `--until-fail`, a failed repetition stops the run.
    fn stop_after(&self, test: &TestId, status: TestStatus, stopping: bool) -> Option<String> {
        let control = self.control;
        if !(control.fail_fast || control.until_fail)
            || status.is_success(control.flaky_fail)
            || stopping
        {
            return None;
        }
        tracing::debug!(%test, "fail-fast: stopping the run");
        let flag = if control.fail_fast {
            "--fail-fast"
        } else {
            "--until-fail"
        };
        Some(format!("{flag}: stopping after {test} ({status})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::ExecOutcome;
    use psy_model::{ExitInfo, TestStatus::*};

    fn tests(retries: u32) -> Vec<TestSpec> {
        ["a", "b"]
            .map(|id| TestSpec {
                id: TestId(id.into()),
                retries,
                ..crate::attempt::tests::spec()
            })
            .to_vec()
    }

    fn jobs(retries: u32, control: RunControl) -> LocalJobs {
        let expected = HashMap::from([(TestId("b".into()), Duration::from_secs(3))]);
        LocalJobs::new(tests(retries), &expected, None, control)
    }

    fn offered(source: &mut LocalJobs) -> Vec<AttemptJob> {
        match source.offer() {
            Offer::Now(jobs) => jobs,
            other => panic!("expected jobs, got {other:?}"),
        }
    }

    /// `job` ended with exit code `code` after 10 ms.
    fn end(source: &mut LocalJobs, job: &AttemptJob, code: i32, stopping: bool) -> Settled {
        let outcome = ExecOutcome {
            exit: ExitInfo {
                code: Some(code),
                signal: None,
            },
            wall_time: Duration::from_millis(10),
            ..Default::default()
        };
        let paths = crate::attempt::tests::paths();
        let result = crate::attempt::result(&job.test, job.attempt, 0, false, outcome, paths);
        source.finished(job, &result, stopping)
    }

    fn verdict(settled: &Settled) -> Option<(TestStatus, u32, u64)> {
        let v = settled.verdict.as_ref()?;
        Some((v.status, v.attempts, v.duration_ms))
    }

    #[test]
    fn first_attempts_in_order_then_later_then_done() {
        let mut source = jobs(0, RunControl::default());
        assert_eq!(source.total(), 2);
        let first = offered(&mut source);
        let ids: Vec<(&str, u32, Option<u64>)> = first
            .iter()
            .map(|j| {
                (
                    j.test.id.as_str(),
                    j.attempt,
                    j.expected.map(|d| d.as_secs()),
                )
            })
            .collect();
        assert_eq!(ids, [("a", 1, None), ("b", 1, Some(3))]);
        assert_ne!(first[0].key, first[1].key);
        assert!(matches!(source.offer(), Offer::Later), "both still running");
        assert_eq!(
            verdict(&end(&mut source, &first[0], 0, false)),
            Some((Pass, 1, 10))
        );
        assert!(matches!(source.offer(), Offer::Later));
        source.cancelled(&first[1]);
        assert!(matches!(source.offer(), Offer::Done));
    }

    #[test]
    fn a_failure_is_retried_first_and_a_pass_on_retry_is_flaky() {
        let mut source = jobs(1, RunControl::default());
        let first = offered(&mut source);
        let settled = end(&mut source, &first[1], 1, false);
        assert_eq!(settled.retry, Some(2));
        assert!(settled.verdict.is_none() && settled.stop.is_none());
        let retry = offered(&mut source);
        assert_eq!(retry.len(), 1);
        assert_eq!((retry[0].test.id.as_str(), retry[0].attempt), ("b", 2));
        assert_eq!(retry[0].expected, None, "a retry ranks first");
        let settled = end(&mut source, &retry[0], 0, false);
        assert_eq!(verdict(&settled), Some((Flaky, 2, 20)));
    }

    #[test]
    fn nothing_is_retried_once_the_run_stops() {
        let mut source = jobs(3, RunControl::default());
        let first = offered(&mut source);
        let settled = end(&mut source, &first[0], 1, true);
        assert_eq!(settled.retry, None);
        assert_eq!(verdict(&settled), Some((Fail, 1, 10)));
    }

    #[test]
    fn repetitions_come_with_their_expected_duration() {
        let control = RunControl {
            repeat: 2,
            ..RunControl::default()
        };
        let mut source = jobs(0, control);
        let first = offered(&mut source);
        let settled = end(&mut source, &first[1], 0, false);
        assert!(settled.retry.is_none() && settled.verdict.is_none());
        let next = offered(&mut source);
        assert_eq!(
            (next[0].attempt, next[0].expected),
            (2, Some(Duration::from_secs(3)))
        );
        assert_eq!(
            verdict(&end(&mut source, &next[0], 0, false)),
            Some((Pass, 2, 20))
        );
    }

    #[test]
    fn fail_fast_stops_at_the_first_failed_test() {
        let control = RunControl {
            fail_fast: true,
            ..RunControl::default()
        };
        let mut source = jobs(0, control);
        let first = offered(&mut source);
        let settled = end(&mut source, &first[0], 1, false);
        assert_eq!(
            settled.stop.as_deref(),
            Some("--fail-fast: stopping after a (fail)")
        );
        assert_eq!(verdict(&settled), Some((Fail, 1, 10)));
        let until_fail = RunControl {
            repeat: 5,
            until_fail: true,
            ..RunControl::default()
        };
        let mut source = jobs(0, until_fail);
        let first = offered(&mut source);
        assert!(end(&mut source, &first[0], 0, false).verdict.is_none());
        let next = offered(&mut source);
        let settled = end(&mut source, &next[0], 1, false);
        assert_eq!(
            settled.stop.as_deref(),
            Some("--until-fail: stopping after a (fail)")
        );
        assert_eq!(verdict(&settled), Some((Fail, 2, 20)));
    }
}
