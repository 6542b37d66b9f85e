//! The waiting attempts, grouped by request shape so that choosing the next attempt costs
//! O(shapes) instead of O(attempts): within a shape either every attempt fits or none does.
//!
//! Suites have few distinct requests (the default plus a handful of overrides), so a run of
//! 10,000 attempts does O(shapes) work per placement and per call.

use crate::budget::Usage;
use crate::{Job, JobKey};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Identical packed requests (the same charge, IO included) share a group.
type Shape = Usage;

const KNOWN: u8 = 0b10;
const LIGHT: u8 = 0b01;

/// Priority of a waiting attempt; smaller starts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Rank {
    /// Unknown duration before known, then heavy before light (see the crate docs).
    tier: u8,
    /// Largest first: the expected area (weight x nanoseconds), or only the weight when the
    /// duration is unknown. Within a group the weight is the same, so this is longest first.
    largest_first: Reverse<u128>,
    /// Push order breaks ties, so equal attempts start first-come first-served.
    seq: u64,
}

/// One attempt a selection proposes to start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pick {
    pub(crate) rank: Rank,
    pub(crate) key: JobKey,
    pub(crate) usage: Usage,
    pub(crate) expected: Option<Duration>,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) usage: Usage,
    heavy: bool,
    weight: u64,
    jobs: BTreeMap<Rank, (JobKey, Option<Duration>)>,
}

impl Group {
    pub(crate) fn head(&self) -> Option<Pick> {
        let (&rank, &(key, expected)) = self.jobs.first_key_value()?;
        Some(self.pick(rank, key, expected))
    }

    /// The best-ranked attempt of known duration expected to take at most `limit`.
    pub(crate) fn first_known_within(&self, limit: Duration) -> Option<Pick> {
        let tier = KNOWN | if self.heavy { 0 } else { LIGHT };
        let from = Rank {
            tier,
            largest_first: Reverse(area(self.weight, limit)),
            seq: 0,
        };
        let (&rank, &(key, expected)) = self.jobs.range(from..).next()?;
        (rank.tier == tier).then(|| self.pick(rank, key, expected))
    }

    fn pick(&self, rank: Rank, key: JobKey, expected: Option<Duration>) -> Pick {
        Pick {
            rank,
            key,
            usage: self.usage,
            expected,
        }
    }
}

fn area(weight: u64, d: Duration) -> u128 {
    u128::from(weight) * d.as_nanos()
}

#[derive(Debug)]
struct Entry {
    shape: Shape,
    rank: Rank,
    job: Job,
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    groups: BTreeMap<Shape, Group>,
    entries: HashMap<JobKey, Entry>,
    seq: u64,
}

impl Queue {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn contains(&self, key: JobKey) -> bool {
        self.entries.contains_key(&key)
    }

    /// The caller checked that `key` is not queued yet. `weight` is the size of the request in
    /// core-equivalents (see `Budget::weight`); all requests of one shape have the same.
    pub(crate) fn push(&mut self, job: Job, usage: Usage, heavy: bool, weight: u64) {
        let shape = usage;
        let tier = if job.expected.is_some() { KNOWN } else { 0 } | if heavy { 0 } else { LIGHT };
        let rank = Rank {
            tier,
            largest_first: Reverse(job.expected.map_or(u128::from(weight), |d| area(weight, d))),
            seq: self.seq,
        };
        self.seq += 1;
        let group = self.groups.entry(shape).or_insert_with(|| Group {
            usage,
            heavy,
            weight,
            jobs: BTreeMap::new(),
        });
        group.jobs.insert(rank, (job.key, job.expected));
        self.entries.insert(job.key, Entry { shape, rank, job });
    }

    /// The best-ranked proposal of `choose` over all groups; `steps` counts groups visited.
    pub(crate) fn select<T>(
        &self,
        steps: &mut u64,
        rank: impl Fn(&T) -> Rank,
        mut choose: impl FnMut(&Group) -> Option<T>,
    ) -> Option<T> {
        let mut best: Option<T> = None;
        for group in self.groups.values() {
            *steps += 1;
            let Some(p) = choose(group) else { continue };
            match &best {
                Some(b) if rank(b) <= rank(&p) => {}
                _ => best = Some(p),
            }
        }
        best
    }

    pub(crate) fn remove(&mut self, key: JobKey) -> Option<Job> {
        let entry = self.entries.remove(&key)?;
        if let Some(group) = self.groups.get_mut(&entry.shape) {
            group.jobs.remove(&entry.rank);
            if group.jobs.is_empty() {
                self.groups.remove(&entry.shape);
            }
        }
        Some(entry.job)
    }
}
