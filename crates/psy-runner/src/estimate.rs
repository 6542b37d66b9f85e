//! How long a run should take, from the tests' recorded durations: the live display's ETA
//! counts down from it from the first second instead of waiting for tests to finish.

use crate::jobs::AttemptJob;
use psy_model::{Capacity, CpuPolicy};
use psy_scheduler::simulate::simulate;
use psy_scheduler::{Job, Limits};
use std::time::Duration;

/// The simulated wall time of running `jobs` on `capacity` (ms), each taking its expected
/// duration; a job never recorded counts as the median recorded one. `None` when no job has a
/// recorded duration, or when the simulation fails (the ETA is a hint, never an error).
pub(crate) fn expected_run_ms(
    jobs: &[AttemptJob],
    capacity: &Capacity,
    policy: CpuPolicy,
    limits: Limits,
) -> Option<u64> {
    let mut known: Vec<Duration> = jobs.iter().filter_map(|j| j.expected).collect();
    if known.is_empty() {
        return None;
    }
    known.sort_unstable();
    let typical = known[known.len() / 2];
    let jobs: Vec<(Job, Duration)> = jobs
        .iter()
        .map(|j| {
            let duration = j.expected.unwrap_or(typical);
            let job = Job {
                key: j.key,
                resources: j.test.footprint(),
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
    use crate::jobs::{JobSource, LocalJobs, Offer};
    use psy_model::{IoCapacity, NetworkRequest, Resources, TestId, TestSpec};
    use std::collections::HashMap;

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
            let jobs = LocalJobs::new(tests.to_vec(), expected, None, Default::default()).offer();
            let Offer::Now(jobs) = jobs else {
                panic!("no first attempts: {jobs:?}")
            };
            expected_run_ms(&jobs, &two_cpus(), CpuPolicy::default(), Limits::default())
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
