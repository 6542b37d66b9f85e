//! How long a run should take, from the tests' recorded durations: the live display's ETA
//! counts down from it from the first second instead of waiting for tests to finish.

use psy_model::{Capacity, CpuPolicy, TestId, TestSpec};
use psy_scheduler::simulate::simulate;
use psy_scheduler::{Job, Limits};
use std::collections::HashMap;
use std::time::Duration;

/// The simulated wall time of running `tests` on `capacity` (ms), each taking its expected
/// duration; a test never recorded counts as the median recorded test. `None` when no selected
/// test has a recorded duration, or when the simulation fails (the ETA is a hint, never an error).
pub(crate) fn expected_run_ms(
    tests: &[TestSpec],
    expected: &HashMap<TestId, Duration>,
    capacity: &Capacity,
    policy: CpuPolicy,
    limits: Limits,
) -> Option<u64> {
    let mut known: Vec<Duration> = tests
        .iter()
        .filter_map(|t| expected.get(&t.id).copied())
        .collect();
    if known.is_empty() {
        return None;
    }
    known.sort_unstable();
    let typical = known[known.len() / 2];
    let jobs: Vec<(Job, Duration)> = tests
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let duration = expected.get(&t.id).copied().unwrap_or(typical);
            let job = Job {
                key: crate::attempt::job_key(i, 1),
                resources: t.resources.clone(),
                expected: Some(duration),
            };
            (job, duration)
        })
        .collect();
    match simulate(capacity, policy, &limits, &jobs) {
        Ok(sim) => Some(sim.makespan.as_millis() as u64),
        Err(e) => {
            tracing::debug!("no run time estimate: {e}");
            None
        }
    }
}
