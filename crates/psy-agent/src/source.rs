//! [`LeasedJobs`]: the engine's job source over the server's leases, and the state it shares
//! with the agent's threads (the claimer, the heartbeats, the reporter).
//!
//! The engine's loop thread only ever takes what the claimer made ready, hands finished
//! attempts to the reporter, and hears of withdrawn leases; no HTTP call is made on it, so a
//! server that is down never holds up starting and collecting attempts.

use crate::report::{Outgoing, Pending};
use psy_fleet::wire::Lease;
use psy_fleet::FleetClient;
use psy_model::AttemptResult;
use psy_runner::jobs::{AttemptJob, JobSource, Offer, Settled};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A lease as the agent's messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaseRef {
    pub(crate) lease_id: i64,
    pub(crate) fencing_token: i64,
    pub(crate) run_id: i64,
    pub(crate) test_id: String,
    pub(crate) attempt: i32,
}

impl LeaseRef {
    pub(crate) fn of(lease: &Lease) -> LeaseRef {
        LeaseRef {
            lease_id: lease.lease_id,
            fencing_token: lease.fencing_token,
            run_id: lease.run_id,
            test_id: lease.test_id.clone(),
            attempt: lease.attempt,
        }
    }

    /// The engine's key of the lease's attempt (lease ids are unique and positive).
    pub(crate) fn key(&self) -> u64 {
        self.lease_id as u64
    }
}

impl std::fmt::Display for LeaseRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "test {:?} of run {} (attempt {}, lease {})",
            self.test_id, self.run_id, self.attempt, self.lease_id
        )
    }
}

/// A lease the agent holds: heartbeated until its result is answered or it is let go.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) lease: LeaseRef,
    pub(crate) next_beat: Instant,
    /// Between heartbeats: the agent's `--heartbeat`, shorter for short leases.
    pub(crate) interval: Duration,
}

/// A claimed job the engine may run: ready, then offered, until it ends.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) attempt: AttemptJob,
    pub(crate) lease: LeaseRef,
    pub(crate) cpu_millis: u64,
    pub(crate) memory_bytes: u64,
    /// Where the engine writes its output (stdout, stderr), removed once reported.
    pub(crate) logs: (PathBuf, PathBuf),
    pub(crate) offered: bool,
}

/// What the threads of the agent share.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// What claimed jobs take until they end (from their claim, so claims ask for what is
    /// really free).
    pub(crate) used_cpu_millis: u64,
    pub(crate) used_memory_bytes: u64,
    /// Claimed jobs by key, ready or offered.
    pub(crate) jobs: HashMap<u64, Job>,
    /// Keys of jobs ready and not offered yet, in claim order.
    pub(crate) ready: Vec<u64>,
    /// Offered jobs whose lease is lost: the engine drops or kills them.
    pub(crate) withdrawn: Vec<u64>,
    /// Leases held, by id.
    pub(crate) held: HashMap<i64, Held>,
    /// Why the agent must stop (the server refused its token).
    pub(crate) fatal: Option<String>,
}

impl State {
    fn free(&mut self, job: &Job) {
        self.used_cpu_millis = self.used_cpu_millis.saturating_sub(job.cpu_millis);
        self.used_memory_bytes = self.used_memory_bytes.saturating_sub(job.memory_bytes);
    }
}

/// The state, and how the threads tell each other about it.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Capacity freed or the agent stopping: the claimer and the heartbeats wait on it.
    pub(crate) changed: Condvar,
    /// Stop claiming: a signal, a fatal refusal, or the end of the engine run.
    pub(crate) stop: Arc<AtomicBool>,
    /// Written to wake the engine's loop (new jobs, withdrawn ones).
    wake: UnixStream,
    pub(crate) client: FleetClient,
    pub(crate) agent: String,
}

impl Shared {
    /// Shared state, and the read end of the loop's wake-up.
    pub(crate) fn new(
        client: FleetClient,
        agent: String,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<(Arc<Shared>, UnixStream)> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        let shared = Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stop,
            wake: tx,
            client,
            agent,
        };
        Ok((Arc::new(shared), rx))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is made whole under the lock: a panicking holder leaves it consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Wakes the engine's loop (a full socket already will).
    pub(crate) fn wake(&self) {
        let _ = (&self.wake).write(b"!");
    }

    /// Stops the agent: the server refused it for good (`why` is the message to exit with).
    pub(crate) fn fatal(&self, why: String) {
        tracing::error!("{why}");
        self.lock().fatal.get_or_insert(why);
        self.stop.store(true, Ordering::SeqCst);
        self.changed.notify_all();
        self.wake();
    }

    /// `lease` is no longer the agent's (the server gave it to another agent, or its run was
    /// cancelled): it is not heartbeated any more, a job not offered yet is dropped, and an
    /// offered one is withdrawn from the engine.
    pub(crate) fn lost(&self, lease: &LeaseRef, why: &str) {
        let mut state = self.lock();
        if state.held.remove(&lease.lease_id).is_none() {
            return;
        }
        let key = lease.key();
        let offered = state.jobs.get(&key).map(|j| j.offered);
        match offered {
            Some(false) => {
                state.ready.retain(|k| *k != key);
                if let Some(job) = state.jobs.remove(&key) {
                    state.free(&job);
                }
                self.changed.notify_all();
            }
            Some(true) => {
                state.withdrawn.push(key);
                self.wake();
            }
            None => {}
        }
        drop(state);
        tracing::warn!("{lease} is no longer this agent's: {why}; its attempt is dropped");
    }

    /// Stops heartbeating `lease` (its result was answered, or it is left to expire).
    pub(crate) fn let_go(&self, lease_id: i64) {
        self.lock().held.remove(&lease_id);
    }
}

/// The engine's job source: leases the claimer made ready, offered as they come.
#[derive(Debug)]
pub(crate) struct LeasedJobs {
    shared: Arc<Shared>,
    wake: UnixStream,
    reports: Sender<Outgoing>,
}

impl LeasedJobs {
    pub(crate) fn new(shared: Arc<Shared>, wake: UnixStream, reports: Sender<Outgoing>) -> Self {
        LeasedJobs {
            shared,
            wake,
            reports,
        }
    }

    /// Gives back `lease` if it is still held (a lost one is not this agent's any more); if the
    /// reporter is gone, it is left to expire.
    fn release(&self, lease: LeaseRef) {
        if !self.shared.lock().held.contains_key(&lease.lease_id) {
            return;
        }
        tracing::info!("{lease} will not run here: releasing it");
        let id = lease.lease_id;
        if self.reports.send(Outgoing::Release(lease)).is_err() {
            self.shared.let_go(id);
        }
    }

    /// Releases the jobs claimed and not offered to the engine yet (the agent is stopping).
    pub(crate) fn release_unoffered(&mut self) {
        let leases: Vec<LeaseRef> = {
            let mut state = self.shared.lock();
            let keys = std::mem::take(&mut state.ready);
            let jobs: Vec<Job> = keys.iter().filter_map(|k| state.jobs.remove(k)).collect();
            for job in &jobs {
                state.free(job);
            }
            jobs.into_iter().map(|job| job.lease).collect()
        };
        for lease in leases {
            self.release(lease);
        }
    }

    /// The job of `key`, removed, its capacity given back to the claimer.
    fn end(&mut self, key: u64) -> Option<Job> {
        let mut state = self.shared.lock();
        let job = state.jobs.remove(&key)?;
        state.free(&job);
        drop(state);
        self.shared.changed.notify_all();
        Some(job)
    }
}

impl JobSource for LeasedJobs {
    fn total(&self) -> usize {
        0
    }

    fn offer(&mut self) -> Offer {
        let mut byte = [0u8; 64];
        while (&self.wake).read(&mut byte).is_ok_and(|n| n > 0) {}
        let mut state = self.shared.lock();
        if state.fatal.is_some() || self.shared.stopping() {
            return Offer::Done;
        }
        let keys = std::mem::take(&mut state.ready);
        let jobs: Vec<AttemptJob> = keys
            .iter()
            .filter_map(|key| {
                let job = state.jobs.get_mut(key)?;
                job.offered = true;
                Some(job.attempt.clone())
            })
            .collect();
        if jobs.is_empty() {
            Offer::Later
        } else {
            Offer::Now(jobs)
        }
    }

    fn finished(&mut self, job: &AttemptJob, result: &AttemptResult, _stopping: bool) -> Settled {
        // The server decides retries and verdicts.
        let Some(ended) = self.end(job.key) else {
            return Settled::default();
        };
        let pending = Pending::attempt(ended.lease, result);
        if self.reports.send(Outgoing::Result(pending)).is_err() {
            tracing::error!("the reporter is gone: a result is not reported");
        }
        Settled::default()
    }

    fn cancelled(&mut self, job: &AttemptJob) {
        let Some(ended) = self.end(job.key) else {
            return;
        };
        // Not reported: the job runs again (here or elsewhere), at once if its lease is still
        // this agent's to give back.
        self.release(ended.lease);
        for path in [&ended.logs.0, &ended.logs.1] {
            let _ = std::fs::remove_file(path);
        }
    }

    fn wake_fd(&self) -> Option<RawFd> {
        Some(self.wake.as_raw_fd())
    }

    fn withdrawn(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.shared.lock().withdrawn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psy_fleet::ServerUrl;
    use psy_model::TestSpec;

    fn shared() -> (Arc<Shared>, UnixStream) {
        let client = FleetClient::new(ServerUrl::parse("http://127.0.0.1:9").unwrap(), "t");
        Shared::new(client, "a1".into(), Arc::new(AtomicBool::new(false))).unwrap()
    }

    fn lease(id: i64) -> LeaseRef {
        LeaseRef {
            lease_id: id,
            fencing_token: 100 + id,
            run_id: 1,
            test_id: format!("t{id}"),
            attempt: 1,
        }
    }

    /// Claims lease `id` as the claimer does: held, and ready with 250 milli-CPUs.
    fn claim(shared: &Shared, id: i64) {
        let lease = lease(id);
        let test: TestSpec = serde_json::from_value(serde_json::json!({
            "id": lease.test_id, "name": lease.test_id, "variant": null, "command": ["true"],
            "cwd": "/", "env": {}, "timeout": {"secs": 1, "nanos": 0}, "retries": 0,
            "resources": {"cpu_millis": 250, "memory_bytes": 1024, "pids": 10, "tmp_bytes": 0},
            "tags": [], "origin": "x"
        }))
        .unwrap();
        let mut state = shared.lock();
        state.held.insert(
            id,
            Held {
                lease: lease.clone(),
                next_beat: Instant::now(),
                interval: Duration::from_secs(1),
            },
        );
        state.used_cpu_millis += 250;
        state.ready.push(lease.key());
        state.jobs.insert(
            lease.key(),
            Job {
                attempt: AttemptJob {
                    key: lease.key(),
                    test: Arc::new(test),
                    attempt: 1,
                    expected: None,
                    origin: None,
                },
                lease,
                cpu_millis: 250,
                memory_bytes: 0,
                logs: (
                    PathBuf::from("/nonexistent/o"),
                    PathBuf::from("/nonexistent/e"),
                ),
                offered: false,
            },
        );
    }

    #[test]
    fn a_lost_lease_drops_a_waiting_job_and_withdraws_an_offered_one() {
        let (shared, wake) = shared();
        let (reports, queue) = std::sync::mpsc::channel();
        let mut jobs = LeasedJobs::new(Arc::clone(&shared), wake, reports);
        assert!(matches!(jobs.offer(), Offer::Later));
        claim(&shared, 1);
        claim(&shared, 2);
        let Offer::Now(offered) = jobs.offer() else {
            panic!("the claimed jobs are offered")
        };
        assert_eq!(offered.iter().map(|j| j.key).collect::<Vec<_>>(), [1, 2]);
        claim(&shared, 3);
        assert_eq!(shared.lock().used_cpu_millis, 750);

        // Not offered yet: dropped, its capacity given back.
        shared.lost(&lease(3), "409");
        assert_eq!(shared.lock().used_cpu_millis, 500);
        assert!(matches!(jobs.offer(), Offer::Later));
        // Offered: withdrawn from the engine, which then cancels it.
        shared.lost(&lease(2), "409");
        assert_eq!(jobs.withdrawn(), [2]);
        jobs.cancelled(&offered[1]);
        assert_eq!(shared.lock().used_cpu_millis, 250);

        // Finished: its result goes to the reporter, its lease still held until answered.
        let result: AttemptResult = serde_json::from_value(serde_json::json!({
            "test_id": "t1", "attempt": 1, "status": "fail",
            "exit": {"code": 1, "signal": null}, "started_at_ms": 0, "duration_ms": 5,
            "cpu_time_ms": null, "peak_memory_bytes": null, "stdout_path": "/nonexistent/o",
            "stderr_path": "/nonexistent/e", "message": null
        }))
        .unwrap();
        jobs.finished(&offered[0], &result, false);
        let Ok(Outgoing::Result(pending)) = queue.try_recv() else {
            panic!("a report")
        };
        assert_eq!(pending.lease, lease(1));
        let state = shared.lock();
        assert_eq!((state.used_cpu_millis, state.jobs.len()), (0, 0));
        assert_eq!(state.held.keys().collect::<Vec<_>>(), [&1]);
        drop(state);

        shared.fatal("refused".into());
        assert!(matches!(jobs.offer(), Offer::Done));
    }

    #[test]
    fn jobs_claimed_ahead_are_heartbeated_until_started_and_released_when_not_run() {
        let (shared, wake) = shared();
        let (reports, queue) = std::sync::mpsc::channel();
        let mut jobs = LeasedJobs::new(Arc::clone(&shared), wake, reports);
        for id in 1..=4 {
            claim(&shared, id);
        }
        let Offer::Now(offered) = jobs.offer() else {
            panic!("the claimed jobs are offered")
        };
        claim(&shared, 5);
        claim(&shared, 6);
        // Waiting ones, offered or not, are held: the heartbeat thread renews every held lease.
        let mut held: Vec<i64> = shared.lock().held.keys().copied().collect();
        held.sort_unstable();
        assert_eq!(held, [1, 2, 3, 4, 5, 6]);

        // The engine gives back an offered job it did not run; lease 2 was lost meanwhile
        // (not this agent's to give back).
        shared.lost(&lease(2), "409");
        jobs.cancelled(&offered[0]);
        jobs.cancelled(&offered[1]);
        // Stopping: the ones never offered are given back; lease 6 was lost.
        shared.lost(&lease(6), "409");
        jobs.release_unoffered();
        let released: Vec<i64> = queue
            .try_iter()
            .map(|outgoing| match outgoing {
                Outgoing::Release(lease) => lease.lease_id,
                Outgoing::Result(pending) => panic!("a result of {}", pending.lease),
            })
            .collect();
        assert_eq!(released, [1, 5]);
        let state = shared.lock();
        assert_eq!(state.ready.len(), 0);
        // Still held until the reporter has released them (then it lets them go).
        assert!(state.held.contains_key(&1) && state.held.contains_key(&5));
        assert_eq!(
            state.used_cpu_millis, 500,
            "jobs 3 and 4 are still the engine's"
        );
    }
}
