//! A benchmark-like run of 20,000 jobs, checking that the work per job stays flat.

use super::*;
use crate::simulate::{simulate, SimEvent};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

fn scale_jobs(n: u64) -> Vec<(Job, Duration)> {
    let shapes = [
        (250, GIB / 2),
        (1000, GIB),
        (2000, 4 * GIB),
        (500, 2 * GIB),
        (4000, 140 * GIB),
    ];
    (0..n)
        .map(|k| {
            let (cpu, mem) = shapes[(k % 5) as usize];
            let actual = Duration::from_millis(100 + (k * 7919) % 5000);
            let expected = (k % 11 != 0).then_some(actual);
            (
                Job {
                    expected,
                    ..job(k, cpu, mem, None)
                },
                actual,
            )
        })
        .collect()
}

/// Drives `jobs` through a scheduler by hand (like `simulate`) and returns the jobs started and
/// the scheduler's step counter.
fn drive(cap: &Capacity, jobs: &[(Job, Duration)]) -> (u64, u64) {
    let mut s = Scheduler::new(cap.clone(), CpuPolicy::Exclusive, Limits::default());
    for (j, _) in jobs {
        s.push(j.clone()).unwrap();
    }
    let mut ends = BinaryHeap::new();
    let mut now = Duration::ZERO;
    let mut started = 0;
    loop {
        for p in s.next_placements(now) {
            started += 1;
            ends.push(Reverse((now + jobs[p.key as usize].1, p.key)));
        }
        let Some(Reverse((at, key))) = ends.pop() else {
            break;
        };
        now = at;
        s.finished(key).unwrap();
    }
    (started, s.steps())
}

/// A benchmark-like run: 20,000 jobs of a few shapes (some of unknown duration) through the
/// scheduler on a 64-core machine. It completes, and the work per job does not grow with the
/// length of the queue: per job it stays about what a quarter of the jobs cost (a rescan of
/// the queue per finish would make it four times as much).
#[test]
fn schedules_20000_jobs() {
    let cap = machine(64, 256);
    let jobs = scale_jobs(20_000);
    let out = simulate(&cap, CpuPolicy::Exclusive, &Limits::default(), &jobs).unwrap();
    let starts = out
        .events
        .iter()
        .filter(|e| matches!(e, SimEvent::Start { .. }));
    assert_eq!(starts.count(), jobs.len());

    let (started, steps) = drive(&cap, &jobs);
    assert_eq!(started, 20_000);
    let (started_small, steps_small) = drive(&cap, &scale_jobs(5_000));
    assert_eq!(started_small, 5_000);
    let (per_job, per_job_small) = (steps / 20_000, steps_small / 5_000);
    assert!(
        per_job < 2 * per_job_small,
        "{per_job} steps per job for 20,000 jobs, {per_job_small} for 5,000"
    );
}
