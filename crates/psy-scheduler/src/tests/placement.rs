//! Placement decisions: ranking, backfill and reservations, caps, cores, rejections.

use super::*;
use crate::{FinishError, PushError};

#[test]
fn unknown_durations_first_then_longest() {
    let mut s = scheduler(
        machine(1, 8),
        [
            job(0, 1000, GIB, Some(5)),
            job(1, 1000, GIB, None),
            job(2, 1000, GIB, Some(10)),
            job(3, 1000, GIB, None),
            job(4, 1000, GIB, Some(1)),
        ],
    );
    let mut order = Vec::new();
    for _ in 0..5 {
        let p = keys(&s.next_placements(secs(0)));
        assert_eq!(p.len(), 1, "one core runs one job at a time");
        s.finished(p[0]).unwrap();
        order.extend(p);
    }
    assert_eq!(order, [1, 3, 2, 0, 4]);
    assert!(s.next_placements(secs(0)).is_empty());
}

#[test]
fn wider_requests_rank_by_area() {
    // 3 cores x 5s outranks 1 core x 10s; 1 core x 20s outranks both.
    let mut s = scheduler(
        machine(8, 16),
        [
            job(0, 1000, GIB, Some(10)),
            job(1, 3000, GIB, Some(5)),
            job(2, 1000, GIB, Some(20)),
        ],
    );
    assert_eq!(keys(&s.next_placements(secs(0))), [2, 1, 0]);
}

#[test]
fn backfills_a_short_job_beside_a_blocked_head() {
    // A takes 3 of 4 cores; B (2 cores) must wait for A; C (1 core, 1s) ends long before A
    // does, so it fills the idle core without delaying B.
    let mut s = scheduler(
        machine(4, 16),
        [
            job(0, 3000, GIB, Some(10)),
            job(1, 2000, GIB, Some(9)),
            job(2, 1000, GIB, Some(1)),
        ],
    );
    assert_eq!(keys(&s.next_placements(secs(0))), [0, 2]);
    s.finished(2).unwrap();
    assert!(s.next_placements(secs(1)).is_empty());
    s.finished(0).unwrap();
    assert_eq!(keys(&s.next_placements(secs(10))), [1]);
}

#[test]
fn backfills_by_memory_when_the_head_does_not_fit() {
    let mut s = scheduler(
        machine(4, 10),
        [job(0, 1000, 6 * GIB, None), job(1, 1000, 6 * GIB, None)],
    );
    assert_eq!(keys(&s.next_placements(secs(0))), [0]);
    // The second 60% job must wait, but small ones fit beside both heavies.
    s.push(job(2, 1000, GIB, None)).unwrap();
    s.push(job(3, 1000, GIB, None)).unwrap();
    assert_eq!(keys(&s.next_placements(secs(0))), [2, 3]);
}

#[test]
fn long_backfill_cannot_delay_the_blocked_head() {
    let mut s = scheduler(machine(2, 16), [job(0, 1000, GIB, Some(10))]);
    assert_eq!(keys(&s.next_placements(secs(0))), [0]);
    // Head 1 needs both cores at t=10. Job 2 would run to t=20: not allowed. Job 3 ends by 10.
    for j in [
        job(1, 2000, GIB, Some(5)),
        job(2, 1000, GIB, Some(20)),
        job(3, 1000, GIB, Some(3)),
    ] {
        s.push(j).unwrap();
    }
    assert_eq!(keys(&s.next_placements(secs(0))), [3]);
    s.finished(3).unwrap();
    assert!(
        s.next_placements(secs(3)).is_empty(),
        "job 2 would delay job 1"
    );
    s.finished(0).unwrap();
    assert_eq!(keys(&s.next_placements(secs(10))), [1]);
    s.finished(1).unwrap();
    assert_eq!(keys(&s.next_placements(secs(15))), [2]);
}

#[test]
fn unknown_durations_cannot_starve_a_big_job() {
    let mut s = scheduler(
        machine(2, 16),
        [job(0, 1000, GIB, None), job(1, 1000, GIB, None)],
    );
    assert_eq!(keys(&s.next_placements(secs(0))), [0, 1]);
    s.push(job(10, 2000, GIB, None)).unwrap();
    for k in 11..20 {
        s.push(job(k, 1000, GIB, None)).unwrap();
    }
    assert!(s.next_placements(secs(0)).is_empty());
    s.finished(0).unwrap();
    // A free core, but taking it could postpone job 10 indefinitely.
    assert!(s.next_placements(secs(1)).is_empty());
    s.finished(1).unwrap();
    assert_eq!(keys(&s.next_placements(secs(2))), [10]);
}

#[test]
fn unknown_blocker_still_lets_light_jobs_use_the_rest() {
    // Head 1 waits for memory held by job 0; light jobs may take what is left beside head 1.
    let mut s = scheduler(
        machine(4, 10),
        [job(0, 1000, 7 * GIB, None), job(1, 1000, 7 * GIB, None)],
    );
    assert_eq!(keys(&s.next_placements(secs(0))), [0]);
    for k in 10..20 {
        s.push(job(k, 1000, GIB / 2, None)).unwrap();
    }
    assert_eq!(keys(&s.next_placements(secs(0))), [10, 11, 12]);
    s.finished(0).unwrap();
    assert_eq!(keys(&s.next_placements(secs(1))), [1]);
}

#[test]
fn never_runs_two_jobs_needing_70_percent_of_memory() {
    let mut s = scheduler(
        machine(8, 10),
        [
            job(0, 1000, 7 * GIB, Some(3)),
            job(1, 1000, 7 * GIB, Some(3)),
        ],
    );
    assert_eq!(s.next_placements(secs(0)).len(), 1);
    assert_eq!(s.running(), 1);
    assert_eq!(s.queued(), 1);
}

#[test]
fn max_jobs_caps_concurrency() {
    let limits = Limits {
        max_jobs: Some(2),
        cpu_cap_millis: None,
    };
    let jobs = (0..5).map(|k| job(k, 1000, GIB, None));
    let mut s = scheduler_with(machine(4, 16), CpuPolicy::Shared, limits, jobs);
    assert_eq!(keys(&s.next_placements(secs(0))), [0, 1]);
    s.finished(0).unwrap();
    assert_eq!(keys(&s.next_placements(secs(1))), [2]);
}

#[test]
fn cpu_cap_limits_the_sum_of_requests() {
    let limits = Limits {
        max_jobs: None,
        cpu_cap_millis: Some(1500),
    };
    let jobs = (0..4).map(|k| job(k, 1000, GIB, None));
    let mut s = scheduler_with(machine(4, 16), CpuPolicy::Shared, limits, jobs);
    assert_eq!(s.next_placements(secs(0)).len(), 1);
    let jobs = (0..4).map(|k| job(k, 500, GIB, None));
    let mut s = scheduler_with(machine(4, 16), CpuPolicy::Shared, limits, jobs);
    assert_eq!(s.next_placements(secs(0)).len(), 3);
}

#[test]
fn job_above_the_cpu_cap_runs_alone_instead_of_never() {
    let limits = Limits {
        max_jobs: None,
        cpu_cap_millis: Some(1000),
    };
    let jobs = [
        job(0, 2000, GIB, Some(10)),
        job(1, 500, GIB, Some(10)),
        job(2, 0, GIB, Some(1)),
    ];
    let mut s = scheduler_with(machine(4, 16), CpuPolicy::Shared, limits, jobs);
    // Job 0 is charged the whole cap; only a job requesting no CPU may join it.
    assert_eq!(keys(&s.next_placements(secs(0))), [0, 2]);
    s.finished(2).unwrap();
    assert!(s.next_placements(secs(1)).is_empty());
    s.finished(0).unwrap();
    assert_eq!(keys(&s.next_placements(secs(10))), [1]);
}

#[test]
fn exclusive_policy_assigns_and_releases_core_ids() {
    let jobs = [
        job(0, 2000, GIB, Some(10)),
        job(1, 1000, GIB, Some(9)),
        job(2, 500, GIB, Some(8)),
        job(3, 1000, GIB, Some(7)),
    ];
    let mut s = scheduler_with(
        machine(4, 16),
        CpuPolicy::Exclusive,
        Limits::default(),
        jobs,
    );
    let p = s.next_placements(secs(0));
    assert_eq!(
        p,
        [
            Placement {
                key: 0,
                cores: Some(vec![0, 1])
            },
            Placement {
                key: 1,
                cores: Some(vec![2])
            },
            Placement {
                key: 2,
                cores: None
            },
        ]
    );
    // Job 3 would leave no whole core for the 500 milli-cpus job 2 shares.
    assert_eq!(s.shared_cores(), [3]);
    s.finished(0).unwrap();
    assert_eq!(s.shared_cores(), [0, 1, 3]);
    let p = s.next_placements(secs(10));
    assert_eq!(
        p,
        [Placement {
            key: 3,
            cores: Some(vec![0])
        }]
    );
    assert_eq!(s.shared_cores(), [1, 3]);
}

#[test]
fn shared_policy_assigns_no_cores() {
    let mut s = scheduler(machine(2, 4), [job(0, 1000, GIB, None)]);
    assert_eq!(s.next_placements(secs(0))[0].cores, None);
    assert!(s.shared_cores().is_empty());
}

#[test]
fn rejects_jobs_that_can_never_fit() {
    let mut cap = machine(2, 4);
    cap.cpu_millis = 1500;
    let mut s = Scheduler::new(cap.clone(), CpuPolicy::Shared, Limits::default());
    let err = s.push(job(7, 1000, 5 * GIB, None)).unwrap_err();
    assert_eq!(
        err,
        PushError::Memory {
            key: 7,
            requested: 5 * GIB,
            available: 4 * GIB
        }
    );
    assert!(err.to_string().contains("job 7"), "{err}");
    assert!(err.to_string().contains("memory"), "{err}");
    let err = s.push(job(8, 2000, GIB, None)).unwrap_err();
    assert_eq!(
        err,
        PushError::Cpu {
            key: 8,
            requested: 2000,
            available: 1500
        }
    );
    assert!(err.to_string().contains("job 8"), "{err}");

    let mut s = Scheduler::new(cap, CpuPolicy::Exclusive, Limits::default());
    let err = s.push(job(9, 3000, GIB, None)).unwrap_err();
    assert_eq!(
        err,
        PushError::Cores {
            key: 9,
            requested: 3000,
            available: 2
        }
    );
    assert!(err.to_string().contains("cores"), "{err}");
    assert_eq!(s.queued(), 0);
}

#[test]
fn rejects_duplicate_keys_but_accepts_a_retry_after_finish() {
    let mut s = scheduler(machine(2, 4), [job(1, 1000, GIB, Some(1))]);
    assert_eq!(
        s.push(job(1, 1000, GIB, None)),
        Err(PushError::Duplicate { key: 1 })
    );
    s.next_placements(secs(0));
    assert_eq!(
        s.push(job(1, 1000, GIB, None)),
        Err(PushError::Duplicate { key: 1 })
    );
    s.finished(1).unwrap();
    assert_eq!(s.finished(1), Err(FinishError::NotRunning { key: 1 }));
    s.push(job(1, 1000, GIB, Some(1))).unwrap();
    assert_eq!(keys(&s.next_placements(secs(1))), [1]);
}

#[test]
fn removed_jobs_are_not_placed() {
    let mut s = scheduler(
        machine(2, 4),
        [job(1, 1000, GIB, None), job(2, 1000, GIB, None)],
    );
    assert_eq!(s.remove(1).map(|j| j.key), Some(1));
    assert_eq!(s.remove(1), None);
    assert_eq!(keys(&s.next_placements(secs(0))), [2]);
}

#[test]
fn zero_limits_are_clamped_to_serial() {
    let limits = Limits {
        max_jobs: Some(0),
        cpu_cap_millis: Some(0),
    };
    let jobs = (0..3).map(|k| job(k, 1000, GIB, None));
    let mut s = scheduler_with(machine(4, 16), CpuPolicy::Shared, limits, jobs);
    assert_eq!(keys(&s.next_placements(secs(0))), [0]);
}

fn io_job(key: JobKey, write_bps: u64) -> Job {
    let mut j = job(key, 100, GIB / 8, Some(10));
    j.resources.io = Some(psy_model::IoRequest {
        write_bps: Some(write_bps),
        ..Default::default()
    });
    j
}

#[test]
fn io_throttles_are_packed_against_the_host_io_capacity() {
    const MIB: u64 = 1 << 20;
    let mut cap = machine(4, 16);
    cap.io.write_bps = Some(100 * MIB);
    // Two writers of 60 MiB/s would need 120 MiB/s: never together; the 30 MiB/s one fits beside either.
    let mut s = scheduler(
        cap.clone(),
        [
            io_job(1, 60 * MIB),
            io_job(2, 60 * MIB),
            io_job(3, 30 * MIB),
        ],
    );
    let first = keys(&s.next_placements(secs(0)));
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.contains(&3), "{first:?}");
    let writer = first.iter().copied().find(|k| *k != 3).unwrap();
    assert!(
        s.next_placements(secs(0)).is_empty(),
        "the other 60 MiB/s writer must wait"
    );
    s.finished(writer).unwrap();
    assert_eq!(keys(&s.next_placements(secs(10))).len(), 1);

    // A request beyond the host's capacity can never run: refused up front, naming the knob.
    let mut s = scheduler(cap, []);
    let err = s.push(io_job(9, 200 * MIB)).unwrap_err().to_string();
    assert!(
        err.contains("io write-bps") && err.contains("job 9"),
        "{err}"
    );
    // Without a configured capacity, IO is not admitted against anything.
    let mut s = scheduler(machine(4, 16), []);
    s.push(io_job(9, 200 * MIB)).unwrap();
}
