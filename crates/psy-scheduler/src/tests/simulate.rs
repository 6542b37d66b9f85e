//! The simulator and the makespan lower bound on instances small enough to work out by hand.

use super::*;
use crate::simulate::{lower_bound, simulate, SimError, SimEvent};

fn timed(jobs: &[Job], secs_each: &[u64]) -> Vec<(Job, Duration)> {
    jobs.iter()
        .cloned()
        .zip(secs_each.iter().map(|s| secs(*s)))
        .collect()
}

#[test]
fn lower_bound_takes_the_largest_of_its_bounds() {
    let cap = machine(2, 10);
    let none = Limits::default();
    // CPU area: 4 one-core jobs of 10s on 2 cores.
    let jobs = timed(
        &(0..4).map(|k| job(k, 1000, GIB, None)).collect::<Vec<_>>(),
        &[10; 4],
    );
    assert_eq!(lower_bound(&cap, CpuPolicy::Shared, &none, &jobs), secs(20));
    // Longest job.
    let jobs = timed(
        &[job(0, 1000, GIB, None), job(1, 1000, GIB, None)],
        &[30, 1],
    );
    assert_eq!(lower_bound(&cap, CpuPolicy::Shared, &none, &jobs), secs(30));
    // Memory-heavy chain: three 60% jobs of 10s cannot overlap, though CPU area says 15s.
    let heavy: Vec<_> = (0..3).map(|k| job(k, 1000, 6 * GIB, None)).collect();
    let jobs = timed(&heavy, &[10; 3]);
    assert_eq!(lower_bound(&cap, CpuPolicy::Shared, &none, &jobs), secs(30));
    // `--jobs 1` serialises everything.
    let serial = Limits {
        max_jobs: Some(1),
        cpu_cap_millis: None,
    };
    let jobs = timed(&[job(0, 0, 0, None), job(1, 0, 0, None)], &[5, 5]);
    assert_eq!(
        lower_bound(&cap, CpuPolicy::Shared, &serial, &jobs),
        secs(10)
    );
    assert_eq!(
        lower_bound(&cap, CpuPolicy::Shared, &none, &[]),
        Duration::ZERO
    );
}

#[test]
fn simulation_reports_events_peaks_and_makespan() {
    let cap = machine(2, 10);
    let jobs = timed(
        &[
            job(0, 1000, 6 * GIB, Some(10)),
            job(1, 1000, 6 * GIB, Some(10)),
            job(2, 1000, GIB, Some(5)),
        ],
        &[10, 10, 5],
    );
    let out = simulate(&cap, CpuPolicy::Shared, &Limits::default(), &jobs).unwrap();
    assert_eq!(out.makespan, secs(20));
    assert_eq!(out.peak_cpu_millis, 2000);
    assert_eq!(out.peak_memory_bytes, 7 * GIB);
    assert_eq!(out.peak_jobs, 2);
    let first = &out.events[..2];
    assert!(first
        .iter()
        .all(|e| matches!(e, SimEvent::Start { at, .. } if *at == secs(0))));
    assert_eq!(
        out.events.last(),
        Some(&SimEvent::Finish {
            key: 1,
            at: secs(20)
        })
    );
}

#[test]
fn simulation_reports_rejected_jobs() {
    let jobs = timed(&[job(3, 1000, 11 * GIB, None)], &[1]);
    let err = simulate(
        &machine(2, 10),
        CpuPolicy::Shared,
        &Limits::default(),
        &jobs,
    )
    .unwrap_err();
    assert!(matches!(err, SimError::Rejected(_)), "{err}");
    assert!(err.to_string().contains("job 3"), "{err}");
}
