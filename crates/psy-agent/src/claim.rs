//! The claimer thread: asks the server for jobs that fit the agent's free capacity and
//! labels, finds each one's test (its project and manifest), checks that it can run here, and
//! makes it ready for the engine; a job that cannot run here is reported as an error at once.
//! It claims again as soon as capacity frees up, and backs off while the queue is empty.
//!
//! Claims run ahead of the engine: the agent holds up to one capacity's worth of jobs beyond
//! what it can run at once (a backlog, see [`claim_size`]), so a slot freed by an ended attempt
//! is refilled from memory instead of waiting for a round trip to the server, and a claim
//! carries many jobs instead of the one or two that just freed. The engine only starts what
//! fits; the backlog's leases are heartbeated like the running ones, and what is left of it
//! when the agent stops is released.

use crate::heartbeat;
use crate::project::Projects;
use crate::report::{refused, Outgoing, Pending};
use crate::source::{Held, Job, LeaseRef, Shared};
use psy_fleet::retry::{self, Backoff};
use psy_fleet::wire::{ClaimRequest, Claimed, Lease};
use psy_model::{Capacity, RunId, TestId};
use psy_runner::engine::Admission;
use psy_runner::jobs::{AttemptJob, JobOrigin};
use psy_runner::layout::StateDir;
use std::collections::BTreeMap;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most jobs one claim asks for.
const MAX_JOBS_PER_CLAIM: u32 = 32;
/// The most jobs the agent holds at once (waiting or running), whatever their size: tests that
/// ask for almost nothing must not make it take the whole queue.
const MAX_HELD: usize = 512;
/// Pauses between claims that found nothing: from the first, doubling to the last.
const IDLE_FIRST: Duration = Duration::from_millis(50);
const IDLE_MAX: Duration = Duration::from_secs(1);
/// After a refusal that says the agent's request is wrong (a bug, not the server blinking).
const AFTER_REFUSAL: Duration = Duration::from_secs(5);

/// The CPU and memory a claim asks for, given the agent's capacity and what its claimed jobs
/// (running, or waiting in the backlog) take: at most the whole capacity (so every job it gets
/// fits the agent by itself), and at most what keeps the jobs held within twice the capacity.
/// `None` while less than half the capacity could be asked for: the backlog is still deep
/// enough, and a claim waits until it can carry several jobs.
pub(crate) fn claim_size(
    cpu: u64,
    used_cpu: u64,
    memory: u64,
    used_memory: u64,
) -> Option<(u64, u64)> {
    let ask = |capacity: u64, used: u64| {
        let ask = capacity.min(capacity.saturating_mul(2).saturating_sub(used));
        (ask > 0 && ask >= capacity.div_ceil(2)).then_some(ask)
    };
    Some((ask(cpu, used_cpu)?, ask(memory, used_memory)?))
}

/// What the claimer needs besides the shared state.
#[derive(Debug)]
pub(crate) struct Claimer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) admission: Admission,
    pub(crate) projects: Projects,
    pub(crate) reports: Sender<Outgoing>,
    /// Where the engine keeps each attempt's logs: its run and state directory.
    pub(crate) run_id: RunId,
    pub(crate) state: StateDir,
    /// The agent's `--heartbeat`.
    pub(crate) heartbeat: Duration,
    /// The registration the server gave this agent, named in each claim: once another agent
    /// registers under the same name, the claims are refused and this agent stops.
    pub(crate) registration: Option<i64>,
}

impl Claimer {
    /// Claims until the agent stops.
    pub(crate) fn run(mut self) {
        let mut backoff = retry::default_backoff();
        let mut idle = Backoff::new(IDLE_FIRST, IDLE_MAX);
        let capacity = self.admission.capacity().clone();
        while !self.shared.stopping() {
            let Some(request) = self.request(&capacity) else {
                self.wait(IDLE_MAX);
                continue;
            };
            let shared = Arc::clone(&self.shared);
            let stop = || shared.stopping();
            let claimed = retry::retry("claiming jobs", &mut backoff, &stop, || {
                shared
                    .client
                    .post::<_, Claimed>("/api/agents/claim", &request)
            });
            match claimed {
                Ok(claimed) if claimed.leases.is_empty() => {
                    let pause = idle.next_pause();
                    self.wait(pause);
                }
                Ok(claimed) => {
                    idle.reset();
                    tracing::debug!(leases = claimed.leases.len(), "claimed");
                    for lease in claimed.leases {
                        self.take(lease);
                    }
                }
                Err(_) if self.shared.stopping() => break,
                Err(e) if matches!(e.status(), Some(401 | 403)) => {
                    self.shared.fatal(refused(&e));
                    break;
                }
                // Taken over: an agent registered under this name since (this one's leases
                // were ended then, and its heartbeats and results are refused).
                Err(e) if e.status() == Some(409) && self.registration.is_some() => {
                    self.shared.fatal(format!(
                        "another agent registered under the name {:?}, which takes it over: \
                         this one stops (give each agent its own --name): {e}",
                        self.shared.agent
                    ));
                    break;
                }
                Err(e) => {
                    tracing::error!("claiming jobs: {e}");
                    retry::sleep_unless(AFTER_REFUSAL, &|| self.shared.stopping());
                }
            }
        }
    }

    /// A claim for what the agent may take now; `None` when it should not claim.
    fn request(&self, capacity: &Capacity) -> Option<ClaimRequest> {
        let state = self.shared.lock();
        let (cpu, memory) = claim_size(
            u64::from(capacity.cpu_millis),
            state.used_cpu_millis,
            capacity.memory_bytes,
            state.used_memory_bytes,
        )?;
        let room = MAX_HELD.saturating_sub(state.jobs.len());
        if room == 0 {
            return None;
        }
        Some(ClaimRequest {
            agent: self.shared.agent.clone(),
            cpu_millis: i64::try_from(cpu).unwrap_or(i64::MAX),
            memory_bytes: i64::try_from(memory).unwrap_or(i64::MAX),
            labels: self.labels.clone(),
            max_jobs: MAX_JOBS_PER_CLAIM.min(u32::try_from(room).unwrap_or(u32::MAX)),
            registration: self.registration,
        })
    }

    /// Waits up to `pause`, or until capacity frees up or the agent stops.
    fn wait(&self, pause: Duration) {
        let state = self.shared.lock();
        if self.shared.stopping() {
            return;
        }
        let _ = self.shared.changed.wait_timeout(state, pause);
    }

    /// Holds `lease` and makes its job ready, or reports why it cannot run here.
    fn take(&mut self, lease: Lease) {
        let held = LeaseRef::of(&lease);
        let interval = heartbeat::interval(self.heartbeat, crate::time::until(&lease.expires_at));
        self.shared.lock().held.insert(
            held.lease_id,
            Held {
                lease: held.clone(),
                next_beat: Instant::now() + interval,
                interval,
            },
        );
        let found = self.projects.test_of(&lease).and_then(|found| {
            let test = self
                .admission
                .admit(&found.test, &found.project_dir)
                .map_err(|why| {
                    format!(
                        "test {:?} of run {} cannot run on agent {:?}: {why}",
                        lease.test_id, lease.run_id, self.shared.agent
                    )
                })?;
            Ok((test, found.project_dir))
        });
        let (test, project_dir) = match found {
            Ok(found) => found,
            Err(why) => {
                tracing::warn!("{held}: reported as an error: {why}");
                let _ = self
                    .reports
                    .send(Outgoing::Result(Pending::error(held, why)));
                return;
            }
        };
        // Unique in the engine run: another run may hold a test of this id, and this attempt
        // may come back here after its lease moved.
        let record_as = TestId(format!(
            "r{}-l{}-{}",
            lease.run_id, lease.lease_id, lease.test_id
        ));
        let attempt = u32::try_from(lease.attempt).unwrap_or(1).max(1);
        let logs = self.state.attempt_logs(&self.run_id, &record_as, attempt);
        let (cpu_millis, memory_bytes) = (
            u64::from(test.resources.cpu_millis),
            test.resources.memory_bytes,
        );
        let job = Job {
            attempt: AttemptJob {
                key: held.key(),
                test: Arc::new(test),
                attempt,
                expected: None,
                origin: Some(Arc::new(JobOrigin {
                    project_dir,
                    record_as,
                })),
            },
            lease: held,
            cpu_millis,
            memory_bytes,
            logs,
            offered: false,
        };
        let mut state = self.shared.lock();
        if !state.held.contains_key(&job.lease.lease_id) {
            // Lost while its test was being found (a cancelled run): nothing to run.
            return;
        }
        state.used_cpu_millis += cpu_millis;
        state.used_memory_bytes += memory_bytes;
        state.ready.push(job.lease.key());
        state.jobs.insert(job.lease.key(), job);
        drop(state);
        self.shared.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::claim_size;

    #[test]
    fn claims_run_a_capacity_ahead_and_wait_until_half_of_it_is_free() {
        const GIB: u64 = 1 << 30;
        // Nothing held: the whole capacity, never more (every job fits the agent alone).
        assert_eq!(claim_size(1000, 0, 4 * GIB, 0), Some((1000, 4 * GIB)));
        // Every slot running: a backlog of one capacity more.
        assert_eq!(claim_size(1000, 1000, 4 * GIB, GIB), Some((1000, 4 * GIB)));
        // Running and a half-full backlog: what tops it up.
        assert_eq!(claim_size(1000, 1500, 4 * GIB, GIB), Some((500, 4 * GIB)));
        // Less than half a capacity to ask for, in either resource: wait.
        assert_eq!(claim_size(1000, 1600, 4 * GIB, 0), None);
        assert_eq!(claim_size(1000, 0, 4 * GIB, 7 * GIB), None);
        assert_eq!(claim_size(1000, 2000, 4 * GIB, 0), None);
        assert_eq!(claim_size(0, 0, 4 * GIB, 0), None);
    }
}
