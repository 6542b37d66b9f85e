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

/// Identical packed requests share a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Shape {
    cpu_millis: u32,
    memory_bytes: u64,
}

const KNOWN: u8 = 0b10;
const LIGHT: u8 = 0b01;

/// Priority of a waiting attempt; smaller starts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Rank {
    /// Unknown duration before known, then heavy before light (see the crate docs).
    tier: u8,
    longest_first: Reverse<Duration>,
    /// Push order breaks ties, so equal attempts start first-come first-served.
    seq: u64,
}

impl Rank {
    pub(crate) fn expected(&self) -> Option<Duration> {
        (self.tier & KNOWN != 0).then_some(self.longest_first.0)
    }
}

/// One attempt a selection proposes to start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pick {
    pub(crate) rank: Rank,
    pub(crate) key: JobKey,
    pub(crate) usage: Usage,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) usage: Usage,
    heavy: bool,
    jobs: BTreeMap<Rank, JobKey>,
}

impl Group {
    pub(crate) fn head(&self) -> Option<Pick> {
        let (&rank, &key) = self.jobs.first_key_value()?;
        Some(self.pick(rank, key))
    }

    /// The best-ranked attempt of known duration expected to take at most `limit`.
    pub(crate) fn first_known_within(&self, limit: Duration) -> Option<Pick> {
        let tier = KNOWN | if self.heavy { 0 } else { LIGHT };
        let from = Rank {
            tier,
            longest_first: Reverse(limit),
            seq: 0,
        };
        let (&rank, &key) = self.jobs.range(from..).next()?;
        (rank.tier == tier).then(|| self.pick(rank, key))
    }

    fn pick(&self, rank: Rank, key: JobKey) -> Pick {
        Pick {
            rank,
            key,
            usage: self.usage,
        }
    }
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

    /// The caller checked that `key` is not queued yet.
    pub(crate) fn push(&mut self, job: Job, usage: Usage, heavy: bool) {
        let shape = Shape {
            cpu_millis: job.resources.cpu_millis,
            memory_bytes: job.resources.memory_bytes,
        };
        let tier = if job.expected.is_some() { KNOWN } else { 0 } | if heavy { 0 } else { LIGHT };
        let rank = Rank {
            tier,
            longest_first: Reverse(job.expected.unwrap_or_default()),
            seq: self.seq,
        };
        self.seq += 1;
        let group = self.groups.entry(shape).or_insert_with(|| Group {
            usage,
            heavy,
            jobs: BTreeMap::new(),
        });
        group.jobs.insert(rank, job.key);
        self.entries.insert(job.key, Entry { shape, rank, job });
    }

    /// The best-ranked proposal of `choose` over all groups; `steps` counts groups visited.
    pub(crate) fn select(
        &self,
        steps: &mut u64,
        mut choose: impl FnMut(&Group) -> Option<Pick>,
    ) -> Option<Pick> {
        let mut best: Option<Pick> = None;
        for group in self.groups.values() {
            *steps += 1;
            if let Some(p) = choose(group) {
                if best.map_or(true, |b| p.rank < b.rank) {
                    best = Some(p);
                }
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
