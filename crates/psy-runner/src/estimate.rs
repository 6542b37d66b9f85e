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

#[cfg(test)]
mod tests {
    use super::*;
    use psy_model::{IoCapacity, NetworkRequest, Resources};

    fn test(id: &str, cpu_millis: u32) -> TestSpec {
        TestSpec {
            id: TestId(id.into()),
            resources: Resources {
                cpu_millis,
                memory_bytes: 1 << 20,
                ..Resources::default()
            },
            ..crate::attempt::tests::spec()
        }
    }

    fn two_cpus() -> Capacity {
        Capacity {
            cpu_millis: 2000,
            memory_bytes: 1 << 30,
            cores: vec![0, 1],
            io: IoCapacity::default(),
            network: NetworkRequest::default(),
        }
    }

    #[test]
    fn simulated_from_recorded_durations() {
        let s = Duration::from_secs;
        let tests = [test("a", 1000), test("b", 1000), test("c", 1000)];
        let estimate = |expected: &HashMap<TestId, Duration>| {
            expected_run_ms(
                &tests,
                expected,
                &two_cpus(),
                CpuPolicy::default(),
                Limits::default(),
            )
        };
        assert_eq!(estimate(&HashMap::new()), None, "nothing recorded");
        // Two CPUs: a (4s) on one, b then c (1s each) on the other.
        let all = HashMap::from([
            (TestId("a".into()), s(4)),
            (TestId("b".into()), s(1)),
            (TestId("c".into()), s(1)),
        ]);
        assert_eq!(estimate(&all), Some(4000));
        // c never recorded: it counts as the median of a and b (4s) and runs beside a.
        let partial = HashMap::from([(TestId("a".into()), s(4)), (TestId("b".into()), s(1))]);
        assert_eq!(estimate(&partial), Some(5000));
    }
}
