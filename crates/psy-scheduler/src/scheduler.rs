//! The scheduler: the queue, the running attempts, and the decision of what starts now.

use crate::budget::{Budget, Usage};
use crate::cores::CorePool;
use crate::queue::{Group, Pick, Queue};
use crate::reservation::Backfill;
use crate::{FinishError, Job, JobKey, Limits, Placement, PushError};
use psy_model::{Capacity, CpuPolicy};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tracing::{debug, trace};

/// Decides which queued attempts start, keeping running attempts within capacity and caps.
#[derive(Debug)]
pub struct Scheduler {
    budget: Budget,
    used: Usage,
    queue: Queue,
    running: HashMap<JobKey, Running>,
    /// Expected ends of running attempts of known duration, soonest first.
    ends: BTreeSet<(Duration, JobKey)>,
    cores: CorePool,
    reservation: Option<Reservation>,
    epochs: u64,
    /// Groups and releases examined, to test that scheduling stays near-linear.
    steps: u64,
}

#[derive(Debug)]
struct Running {
    usage: Usage,
    cores: Option<Vec<u32>>,
    expected_end: Option<Duration>,
    /// The reservation epoch it was backfilled under, if any.
    epoch: Option<u64>,
}

/// The blocked head and what was backfilled beside it (see `reservation.rs`).
#[derive(Debug)]
struct Reservation {
    head: JobKey,
    epoch: u64,
    started: Usage,
}

impl Scheduler {
    /// `capacity` is what tests may use after the reserve for `psy` itself.
    pub fn new(capacity: Capacity, policy: CpuPolicy, limits: Limits) -> Self {
        let cores = match policy {
            CpuPolicy::Exclusive => CorePool::new(&capacity.cores),
            CpuPolicy::Shared => CorePool::default(),
        };
        Scheduler {
            budget: Budget::new(&capacity, policy, &limits),
            used: Usage::default(),
            queue: Queue::default(),
            running: HashMap::new(),
            ends: BTreeSet::new(),
            cores,
            reservation: None,
            epochs: 0,
            steps: 0,
        }
    }

    /// Queues an attempt (a first attempt or a retry). Fails if it could not run even on an
    /// otherwise empty machine, or if its key is already queued or running.
    pub fn push(&mut self, job: Job) -> Result<(), PushError> {
        if self.queue.contains(job.key) || self.running.contains_key(&job.key) {
            return Err(PushError::Duplicate { key: job.key });
        }
        let usage = self
            .budget
            .admit(&job)
            .inspect_err(|e| debug!(%e, "rejected"))?;
        let heavy = self.budget.is_heavy(usage);
        self.queue.push(job, usage, heavy);
        Ok(())
    }

    /// Removes a queued attempt (e.g. on fail-fast); `None` if it is not queued.
    pub fn remove(&mut self, key: JobKey) -> Option<Job> {
        self.queue.remove(key)
    }

    /// Every attempt that should start now, in rank order; the caller starts them all.
    /// `now` is the time since the run started (any monotonic origin works, as long as it is
    /// the same for every call).
    pub fn next_placements(&mut self, now: Duration) -> Vec<Placement> {
        let mut placed = Vec::new();
        // Start the best-ranked attempts while they fit; the first that does not is the head.
        let head = loop {
            let mut steps = 0;
            let best = self.queue.select(&mut steps, Group::head);
            self.steps += steps;
            let Some(best) = best else {
                self.reservation = None;
                return placed;
            };
            if !self.fits_now(best.usage) {
                break best;
            }
            placed.push(self.start(best, now, None));
        };
        let reservation = match self.reservation.take() {
            Some(r) if r.head == head.key => r,
            _ => {
                self.epochs += 1;
                trace!(head = head.key, "reserving for blocked head");
                Reservation {
                    head: head.key,
                    epoch: self.epochs,
                    started: Usage::default(),
                }
            }
        };
        let epoch = reservation.epoch;
        let started = reservation.started;
        self.reservation = Some(reservation);

        let mut plan = self.plan(head.usage, started, now);
        let window = plan.window(now);
        loop {
            let mut steps = 0;
            let pick = self
                .queue
                .select(&mut steps, |group| self.backfill_pick(group, &plan, window));
            self.steps += steps;
            let Some((pick, consumes)) = pick.map(|p| (p, !ends_by(p, window))) else {
                break;
            };
            if consumes {
                plan.consume(pick.usage);
            }
            if let Some(r) = self.reservation.as_mut() {
                r.started = r.started.plus(pick.usage);
            }
            placed.push(self.start(pick, now, Some(epoch)));
        }
        placed
    }

    /// Releases a finished attempt's resources (and cores).
    pub fn finished(&mut self, key: JobKey) -> Result<(), FinishError> {
        let run = self
            .running
            .remove(&key)
            .ok_or(FinishError::NotRunning { key })?;
        self.used = self.used.minus(run.usage).unwrap_or_default();
        if let Some(end) = run.expected_end {
            self.ends.remove(&(end, key));
        }
        if let Some(ids) = &run.cores {
            self.cores.give(ids);
        }
        if let Some(r) = self.reservation.as_mut() {
            if run.epoch == Some(r.epoch) {
                r.started = r.started.minus(run.usage).unwrap_or_default();
            }
        }
        Ok(())
    }

    /// Attempts waiting to be placed.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Attempts placed and not finished.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Under the exclusive policy, the cores not held exclusively: the cpuset fractional
    /// attempts share. It shrinks and grows as whole-core attempts start and finish. Empty under
    /// the shared policy.
    pub fn shared_cores(&self) -> Vec<u32> {
        self.cores.shared()
    }

    #[cfg(test)]
    pub(crate) fn steps(&self) -> u64 {
        self.steps
    }

    fn fits_now(&self, usage: Usage) -> bool {
        self.used.plus(usage).fits_in(self.budget.total)
    }

    /// What may run beside the blocked head (needing `need`) without delaying it.
    fn plan(&mut self, need: Usage, started: Usage, now: Duration) -> Backfill {
        let free = self.budget.total.minus(self.used).unwrap_or_default();
        let running = &self.running;
        let releases = self
            .ends
            .iter()
            .filter_map(|(end, key)| Some((*end, running.get(key)?.usage)));
        Backfill::plan(
            need,
            free,
            releases,
            now,
            self.budget.total,
            started,
            &mut self.steps,
        )
    }

    /// The best attempt of `group` that may start beside the blocked head.
    fn backfill_pick(
        &self,
        group: &Group,
        plan: &Backfill,
        window: Option<Duration>,
    ) -> Option<Pick> {
        if !self.fits_now(group.usage) {
            return None;
        }
        let head = group.head()?;
        if ends_by(head, window) || plan.room().is_some_and(|r| head.usage.fits_in(r)) {
            return Some(head);
        }
        group.first_known_within(window?)
    }

    fn start(&mut self, pick: Pick, now: Duration, epoch: Option<u64>) -> Placement {
        let job = self.queue.remove(pick.key);
        debug_assert!(job.is_some(), "picked job {} is queued", pick.key);
        let cores = job
            .as_ref()
            .and_then(|j| self.budget.exclusive_cores(&j.resources))
            .map(|n| self.cores.take(n));
        let expected_end = pick.rank.expected().map(|d| now.saturating_add(d));
        if let Some(end) = expected_end {
            self.ends.insert((end, pick.key));
        }
        self.used = self.used.plus(pick.usage);
        trace!(key = pick.key, ?cores, "placing");
        self.running.insert(
            pick.key,
            Running {
                usage: pick.usage,
                cores: cores.clone(),
                expected_end,
                epoch,
            },
        );
        Placement {
            key: pick.key,
            cores,
        }
    }
}

/// Whether `pick` is expected to end within `window` (so it cannot delay the head).
fn ends_by(pick: Pick, window: Option<Duration>) -> bool {
    matches!((pick.rank.expected(), window), (Some(d), Some(w)) if d <= w)
}
