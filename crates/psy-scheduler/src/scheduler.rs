//! The scheduler: the queue, the running attempts, and the decision of what starts now.

use crate::budget::{Budget, Usage};
use crate::cores::CorePool;
use crate::profile::{Profile, Window, RESERVATIONS};
use crate::queue::{Group, Pick, Queue, Rank};
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
    /// The epoch of the blocked head it was started beside, if any.
    epoch: Option<u64>,
}

/// The blocked head and what was started beside it since it got blocked (see `profile.rs`).
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
        let weight = self.budget.weight(usage);
        self.queue.push(job, usage, heavy, weight);
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
        let mut plan = self.plan(now);
        loop {
            let mut steps = 0;
            let choice = self.queue.select(&mut steps, Choice::rank, |group| {
                self.choose(group, &mut plan)
            });
            self.steps += steps;
            match choice {
                None => break,
                Some(Choice::Start(pick)) => placed.push(self.start_planned(pick, now, &mut plan)),
                Some(Choice::Reserve(pick)) => self.reserve(pick, &mut plan),
            }
        }
        self.steps += plan.profile.steps;
        if plan.reserved.is_empty() {
            self.reservation = None;
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

    fn plan(&self, now: Duration) -> Plan {
        let free = self.budget.total.minus(self.used).unwrap_or_default();
        let running = &self.running;
        let releases = self
            .ends
            .iter()
            .filter_map(|(end, key)| Some((*end, running.get(key)?.usage)));
        Plan {
            profile: Profile::new(now, free, releases),
            reserved: Vec::new(),
            room: None,
        }
    }

    /// What `group` proposes: its head if it can start now without delaying any reservation,
    /// else a reservation for its head (while reservations remain), else its best attempt
    /// short enough to end before the reservations it would collide with.
    fn choose(&self, group: &Group, plan: &mut Plan) -> Option<Choice> {
        let head = group.head()?;
        let reserved = plan.reserved.iter().any(|(key, _)| *key == head.key);
        let within_room = match plan.room {
            None => true,
            Some(room) => room.is_some_and(|r| group.usage.fits_in(r)),
        };
        let window = if self.fits_now(group.usage) && within_room {
            plan.profile.window(group.usage)
        } else {
            Window::Never
        };
        if !reserved && window.covers(head.expected) {
            return Some(Choice::Start(head));
        }
        if !reserved && plan.reserved.len() < RESERVATIONS && !self.conflicts(head.usage, plan) {
            return Some(Choice::Reserve(head));
        }
        match window {
            Window::For(w) => group.first_known_within(w).map(Choice::Start),
            Window::Never | Window::Forever => None,
        }
    }

    /// Whether `usage` can never run beside an attempt already reserved this call: then it
    /// has to wait for that one anyway, and a reservation is better spent on another group.
    fn conflicts(&self, usage: Usage, plan: &Plan) -> bool {
        let total = self.budget.total;
        plan.reserved
            .iter()
            .any(|(_, r)| !r.plus(usage).fits_in(total))
    }

    fn start_planned(&mut self, pick: Pick, now: Duration, plan: &mut Plan) -> Placement {
        let until = pick.expected.map(|d| now.saturating_add(d));
        plan.profile.take(now, until, pick.usage);
        if let Some(room) = plan.room.as_mut() {
            *room = room.and_then(|r| r.minus(pick.usage));
        }
        let epoch = match self.reservation.as_mut() {
            Some(r) if !plan.reserved.is_empty() => {
                r.started = r.started.plus(pick.usage);
                Some(r.epoch)
            }
            _ => None,
        };
        self.start(pick, now, epoch)
    }

    /// Books the earliest time `pick` fits. The first reservation of a call (the head) also
    /// starts or continues its epoch; if the head can only fit once attempts of unknown
    /// duration end, everything started beside it must leave room for it instead.
    fn reserve(&mut self, pick: Pick, plan: &mut Plan) {
        let at = plan.profile.earliest_fit(pick.usage, pick.expected);
        if let Some(at) = at {
            let until = pick.expected.map(|d| at.saturating_add(d));
            plan.profile.take(at, until, pick.usage);
        }
        if plan.reserved.is_empty() {
            let reservation = match self.reservation.take() {
                Some(r) if r.head == pick.key => r,
                _ => {
                    self.epochs += 1;
                    trace!(head = pick.key, "head blocked");
                    Reservation {
                        head: pick.key,
                        epoch: self.epochs,
                        started: Usage::default(),
                    }
                }
            };
            if at.is_none() {
                let room = self.budget.total.minus(pick.usage);
                plan.room = Some(room.and_then(|r| r.minus(reservation.started)));
            }
            self.reservation = Some(reservation);
        }
        plan.reserved.push((pick.key, pick.usage));
    }

    fn start(&mut self, pick: Pick, now: Duration, epoch: Option<u64>) -> Placement {
        let job = self.queue.remove(pick.key);
        debug_assert!(job.is_some(), "picked job {} is queued", pick.key);
        let cores = job
            .as_ref()
            .and_then(|j| self.budget.exclusive_cores(&j.resources))
            .map(|n| self.cores.take(n));
        let expected_end = pick.expected.map(|d| now.saturating_add(d));
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

/// The state of one `next_placements` call.
#[derive(Debug)]
struct Plan {
    profile: Profile,
    /// Heads reserved this call, best-ranked first.
    reserved: Vec<(JobKey, Usage)>,
    /// Set when the first reserved head waits on attempts of unknown duration: what may still
    /// be started beside it (`None`: nothing).
    room: Option<Option<Usage>>,
}

#[derive(Debug)]
enum Choice {
    Start(Pick),
    Reserve(Pick),
}

impl Choice {
    fn rank(&self) -> Rank {
        match self {
            Choice::Start(p) | Choice::Reserve(p) => p.rank,
        }
    }
}
