//! Event-driven simulation of a run with a virtual clock, and a lower bound on its makespan.
//!
//! Used by the property tests (the events are the oracle's input) and by `psy bench makespan`
//! to compare the scheduler with the ideal.

use crate::budget::Budget;
use crate::{FinishError, Job, JobKey, Limits, PushError, Scheduler};
use psy_model::{Capacity, CpuPolicy};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;
use thiserror::Error;

/// Something the simulated runner observed, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimEvent {
    Start {
        key: JobKey,
        at: Duration,
        cores: Option<Vec<u32>>,
    },
    Finish {
        key: JobKey,
        at: Duration,
    },
}

/// The result of [`simulate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimOutcome {
    /// When the last attempt ended.
    pub makespan: Duration,
    /// Starts and finishes in order; finishes at an instant come before starts at it.
    pub events: Vec<SimEvent>,
    /// Highest sum of running `cpu_millis` requests.
    pub peak_cpu_millis: u64,
    /// Highest sum of running `memory_bytes` requests.
    pub peak_memory_bytes: u64,
    /// Most attempts running at once.
    pub peak_jobs: usize,
}

/// Why a simulation could not complete.
#[derive(Debug, Error)]
pub enum SimError {
    #[error("cannot simulate: {0}")]
    Rejected(#[from] PushError),
    #[error("scheduler stalled at {at:?}: nothing runs and {queued} jobs are still queued")]
    Stalled { at: Duration, queued: usize },
    #[error("scheduler rejected a finish: {0}")]
    Finish(#[from] FinishError),
}

/// Runs `jobs` (each with its actual duration) through a [`Scheduler`] on a virtual clock:
/// all jobs are queued at time zero, and the scheduler is asked for placements at the start
/// and after every instant at which attempts end (finishes at one instant are batched).
pub fn simulate(
    capacity: &Capacity,
    policy: CpuPolicy,
    limits: &Limits,
    jobs: &[(Job, Duration)],
) -> Result<SimOutcome, SimError> {
    let mut sched = Scheduler::new(capacity.clone(), policy, *limits);
    let mut actual = HashMap::with_capacity(jobs.len());
    for (job, duration) in jobs {
        sched.push(job.clone())?;
        actual.insert(job.key, (job.resources.clone(), *duration));
    }
    let mut ends: BinaryHeap<Reverse<(Duration, JobKey)>> = BinaryHeap::new();
    let mut out = SimOutcome {
        makespan: Duration::ZERO,
        events: Vec::with_capacity(2 * jobs.len()),
        peak_cpu_millis: 0,
        peak_memory_bytes: 0,
        peak_jobs: 0,
    };
    let (mut cpu, mut memory) = (0u64, 0u64);
    let mut now = Duration::ZERO;
    loop {
        for p in sched.next_placements(now) {
            // Keys come from `jobs`, so the lookup cannot miss.
            let (resources, duration) = &actual[&p.key];
            cpu += u64::from(resources.cpu_millis);
            memory += resources.memory_bytes;
            out.peak_cpu_millis = out.peak_cpu_millis.max(cpu);
            out.peak_memory_bytes = out.peak_memory_bytes.max(memory);
            ends.push(Reverse((now + *duration, p.key)));
            out.peak_jobs = out.peak_jobs.max(ends.len());
            out.events.push(SimEvent::Start {
                key: p.key,
                at: now,
                cores: p.cores,
            });
        }
        let Some(Reverse((at, _))) = ends.peek().copied() else {
            break;
        };
        now = at;
        while let Some(Reverse((end, key))) = ends.peek().copied() {
            if end != now {
                break;
            }
            ends.pop();
            sched.finished(key)?;
            let (resources, _) = &actual[&key];
            cpu -= u64::from(resources.cpu_millis);
            memory -= resources.memory_bytes;
            out.events.push(SimEvent::Finish { key, at: now });
        }
    }
    if sched.queued() > 0 {
        return Err(SimError::Stalled {
            at: now,
            queued: sched.queued(),
        });
    }
    out.makespan = now;
    Ok(out)
}

/// A makespan no schedule can beat: the largest of the longest job; the total CPU, capped-CPU
/// and memory "area" (request x duration) over the corresponding totals; the total duration
/// over `--jobs`; and the summed durations of the jobs needing more than half of a resource
/// (no two of them can overlap).
pub fn lower_bound(
    capacity: &Capacity,
    policy: CpuPolicy,
    limits: &Limits,
    jobs: &[(Job, Duration)],
) -> Duration {
    let budget = Budget::new(capacity, policy, limits);
    let total = budget.total;
    // [cpu, capped cpu, memory, jobs] areas, in unit-nanoseconds.
    let mut area = [0u128; 4];
    // Serial chains of jobs taking more than half of cpu, capped cpu, memory.
    let mut chain = [0u128; 3];
    let mut longest = 0u128;
    for (job, duration) in jobs {
        let d = duration.as_nanos();
        let u = budget.charge(&job.resources);
        longest = longest.max(d);
        let amounts = [u.cpu, u.capped_cpu, u.memory, u.jobs];
        for (a, amount) in area.iter_mut().zip(amounts) {
            *a += u128::from(amount) * d;
        }
        let totals = [total.cpu, total.capped_cpu, total.memory];
        for ((c, amount), t) in chain.iter_mut().zip(amounts).zip(totals) {
            if u128::from(amount) * 2 > u128::from(t) {
                *c += d;
            }
        }
    }
    let totals = [total.cpu, total.capped_cpu, total.memory, total.jobs];
    let by_area = area
        .iter()
        .zip(totals)
        .filter(|(_, t)| *t > 0)
        .map(|(a, t)| a.div_ceil(u128::from(t)));
    let bound = by_area.chain(chain).fold(longest, u128::max);
    Duration::from_nanos(u64::try_from(bound).unwrap_or(u64::MAX))
}
