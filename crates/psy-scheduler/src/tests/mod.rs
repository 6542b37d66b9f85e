//! Unit tests: the scheduler's decisions on small hand-made situations, the simulator, and a
//! 20,000-job run.

mod network;
mod placement;
mod scale;
mod simulate;

use crate::{Job, JobKey, Limits, Placement, Scheduler};
use psy_model::{Capacity, CpuPolicy, Resources};
use std::time::Duration;

pub(super) const GIB: u64 = 1 << 30;

pub(super) fn machine(cores: u32, memory_gib: u64) -> Capacity {
    Capacity {
        cpu_millis: cores * 1000,
        memory_bytes: memory_gib * GIB,
        cores: (0..cores).collect(),
        io: Default::default(),
        network: Default::default(),
    }
}

pub(super) fn job(key: JobKey, cpu_millis: u32, memory_bytes: u64, secs: Option<u64>) -> Job {
    Job {
        key,
        resources: Resources {
            cpu_millis,
            memory_bytes,
            ..Resources::default()
        },
        expected: secs.map(Duration::from_secs),
    }
}

pub(super) fn keys(placements: &[Placement]) -> Vec<JobKey> {
    placements.iter().map(|p| p.key).collect()
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(super) fn scheduler(cap: Capacity, jobs: impl IntoIterator<Item = Job>) -> Scheduler {
    scheduler_with(cap, CpuPolicy::Shared, Limits::default(), jobs)
}

pub(super) fn scheduler_with(
    cap: Capacity,
    policy: CpuPolicy,
    limits: Limits,
    jobs: impl IntoIterator<Item = Job>,
) -> Scheduler {
    let mut s = Scheduler::new(cap, policy, limits);
    for j in jobs {
        s.push(j).unwrap();
    }
    s
}
