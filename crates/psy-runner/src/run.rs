//! The run loop: jobs from a [`JobSource`] -> schedule -> start -> wait (pidfds, deadlines,
//! Ctrl-C) -> record -> tell the source -> report.
//!
//! One thread drives everything. It is also the thread that creates every container, which the
//! sandbox requires (a container dies with the thread that created it, so a killed psy leaves
//! no test behind).

mod disk_full;
mod settle;
mod start;
#[cfg(test)]
mod tests;

use crate::attempt::{self, AttemptPaths};
use crate::executor::{Executor, Running};
use crate::interrupt::Interrupts;
use crate::jobs::{AttemptJob, JobSource, Offer};
use crate::layout::StateDir;
use crate::reserve::Reserve;
use crate::scratch::ScratchPool;
use psy_model::events::RunSummary;
use psy_model::{Capacity, CpuPolicy, LogStore, LogStream, RunEvent, RunId};
use psy_scheduler::{Job, Limits, Scheduler};
use psy_store::{RunRecord, RunState, Store};
use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Everything a run needs besides its collaborators (the tests come from a [`JobSource`]).
#[derive(Debug)]
pub struct RunSettings {
    pub run_id: RunId,
    pub project_dir: PathBuf,
    pub state: StateDir,
    pub capacity: Capacity,
    pub cpu_policy: CpuPolicy,
    pub limits: Limits,
    pub manifest: String,
    pub command_line: String,
    /// Reported as run warnings after the executor's own (e.g. the tests asking for guarantees
    /// this host cannot enforce).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("test {test}: {message}")]
    Unschedulable { test: String, message: String },
    /// The store's message already names the database and the operation.
    #[error(transparent)]
    Store(#[from] psy_store::StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How a run ended: its totals, and why it stopped early when the disk holding `.psyduck`
/// filled up (everything that finished is recorded all the same).
#[derive(Debug)]
pub struct RunOutcome {
    pub summary: RunSummary,
    /// "the disk holding /p/.psyduck is full: ..." when the run stopped for that.
    pub disk_full: Option<String>,
    /// Ctrl-C (or SIGTERM, SIGHUP) stopped the run.
    pub interrupted: bool,
}

/// A started attempt.
#[derive(Debug)]
struct InFlight {
    job: AttemptJob,
    handle: Box<dyn Running>,
    deadline: Instant,
    started_at_ms: u64,
    timed_out: bool,
    /// Killed because the run stopped (Ctrl-C, fail-fast): not a verdict on the test.
    cancelled: bool,
    paths: AttemptPaths,
    /// Exclusive policy: a fractional attempt, confined to the cores no one holds exclusively.
    on_shared_cores: bool,
}

/// An attempt between placement and a running container.
#[derive(Debug)]
struct Starting {
    job: AttemptJob,
    started_at_ms: u64,
    started_at: Instant,
    paths: AttemptPaths,
    on_shared_cores: bool,
}

/// The state of one run while it executes.
struct RunLoop<'a> {
    run_id: RunId,
    project_dir: PathBuf,
    state: StateDir,
    jobs: &'a mut dyn JobSource,
    /// Offered jobs the scheduler has not placed yet, by key.
    pending: HashMap<u64, AttemptJob>,
    store: &'a mut dyn Store,
    executor: &'a mut dyn Executor,
    emit: &'a mut dyn FnMut(&RunEvent),
    scheduler: Scheduler,
    base_env: Vec<(String, String)>,
    started: Instant,
    summary: RunSummary,
    in_flight: Vec<InFlight>,
    interrupted: bool,
    scratch: ScratchPool,
    logs: &'a dyn LogStore,
    cpu_policy: CpuPolicy,
    /// Exclusive policy: the cores fractional attempts currently run on.
    shared_cores: Vec<u32>,
    /// Space freed for the store when the disk fills up.
    reserve: Reserve,
    /// Why the run stopped early: the disk holding `.psyduck` filled up.
    disk_full: Option<String>,
    /// Attempts killed because the disk filled up, to record.
    stopped: Vec<disk_full::Stopped>,
    /// Why the run stopped at a failure (`--fail-fast`, `--until-fail`).
    failed_fast: Option<String>,
}

/// Runs every job `jobs` offers and returns the summary. Each attempt is committed to `store`
/// before its event is emitted.
pub fn run(
    settings: RunSettings,
    jobs: &mut dyn JobSource,
    store: &mut dyn Store,
    logs: &dyn LogStore,
    executor: &mut dyn Executor,
    emit: &mut dyn FnMut(&RunEvent),
) -> Result<RunOutcome, RunError> {
    // Before the run's first write: what it frees is what the run's last writes need.
    std::fs::create_dir_all(settings.state.root()).map_err(io_err(format!(
        "creating {}",
        settings.state.root().display()
    )))?;
    let reserve = Reserve::make(settings.state.reserve());
    let started = Instant::now();
    let started_at_ms = now_ms();
    let first = match jobs.offer() {
        Offer::Now(first) => first,
        Offer::Later | Offer::Done => Vec::new(),
    };
    let expected_ms = crate::estimate::expected_run_ms(
        &first,
        &settings.capacity,
        settings.cpu_policy,
        settings.limits,
    );
    let mut scheduler = Scheduler::new(settings.capacity, settings.cpu_policy, settings.limits);
    let initial_shared = scheduler.shared_cores();
    let privileged: Vec<String> = first
        .iter()
        .filter(|j| j.test.sandbox.privileged)
        .map(|j| j.test.id.to_string())
        .collect();
    let mut pending = HashMap::new();
    schedule(&mut scheduler, &mut pending, first)?;
    let total = jobs.total();
    store.begin_run(&RunRecord {
        run_id: settings.run_id.clone(),
        started_at_ms,
        finished_at_ms: None,
        state: RunState::Running,
        manifest: settings.manifest,
        command_line: settings.command_line,
        host: hostname(),
        note: None,
        summary: RunSummary {
            total,
            ..Default::default()
        },
    })?;
    let scratch_dir = settings.state.run_scratch(&settings.run_id);
    std::fs::create_dir_all(&scratch_dir)
        .map_err(io_err(format!("creating {}", scratch_dir.display())))?;
    emit(&RunEvent::RunStarted {
        run_id: settings.run_id.clone(),
        total,
        started_at_ms,
        expected_ms,
    });
    for message in executor.warnings().into_iter().chain(settings.warnings) {
        emit(&RunEvent::Warning { message });
    }
    if !privileged.is_empty() {
        emit(&RunEvent::Warning {
            message: format!(
                "privileged (host root's powers, no sandbox hardening): {}",
                privileged.join(", ")
            ),
        });
    }
    let interrupts = Interrupts::install().map_err(io_err("installing signal handlers"))?;
    let scratch = ScratchPool::new(settings.state.run_scratch(&settings.run_id));
    logs.open_run(&settings.run_id)
        .map_err(|source| RunError::Io {
            what: format!("preparing the logs of run {}", settings.run_id),
            source,
        })?;
    let mut run = RunLoop {
        scratch,
        logs,
        run_id: settings.run_id,
        project_dir: settings.project_dir,
        state: settings.state,
        jobs,
        pending,
        store,
        executor,
        emit,
        scheduler,
        base_env: std::env::vars()
            .filter(|(k, _)| !k.starts_with("PSY_"))
            .collect(),
        started,
        summary: RunSummary {
            total,
            ..Default::default()
        },
        in_flight: Vec::new(),
        interrupted: false,
        cpu_policy: settings.cpu_policy,
        shared_cores: initial_shared,
        reserve,
        disk_full: None,
        stopped: Vec::new(),
        failed_fast: None,
    };
    let outcome = run.drive(&interrupts);
    for job in std::mem::take(&mut run.pending).into_values() {
        run.jobs.cancelled(&job);
    }
    run.executor.close();
    let _ = std::fs::remove_dir_all(run.state.run_scratch(&run.run_id));
    outcome?;
    run.finish()
}

impl RunLoop<'_> {
    fn drive(&mut self, interrupts: &Interrupts) -> Result<(), RunError> {
        loop {
            let mut placed = false;
            let mut more_may_come = true;
            if !self.stopping() {
                self.withdraw();
                match self.jobs.offer() {
                    Offer::Now(jobs) => schedule(&mut self.scheduler, &mut self.pending, jobs)?,
                    Offer::Later => {}
                    Offer::Done => more_may_come = false,
                }
                let placements = self.scheduler.next_placements(self.started.elapsed());
                self.reconfine_shared();
                placed = !placements.is_empty();
                if placed {
                    self.start_all(placements)?;
                }
            }
            self.settle_stopped()?;
            if self.in_flight.is_empty() {
                // Nothing running and nothing started: no attempt can end to bring more work.
                // Attempts started and already settled (they failed to start) may have, and a
                // source that can wake the loop (an agent) may bring more by itself.
                if placed {
                    continue;
                }
                let waits = self.jobs.wake_fd().is_some() && more_may_come;
                if self.stopping() || !waits {
                    return Ok(());
                }
            }
            for f in self.wait(interrupts)? {
                self.collect(f)?;
            }
        }
    }

    /// Drops the offered jobs the source withdrew that have not started, and kills those that
    /// have (they are settled as cancelled when they end, see `collect`).
    fn withdraw(&mut self) {
        for key in self.jobs.withdrawn() {
            if let Some(job) = self.pending.remove(&key) {
                self.scheduler.remove(key);
                self.jobs.cancelled(&job);
            } else if let Some(f) = self.in_flight.iter_mut().find(|f| f.job.key == key) {
                tracing::debug!(test = %f.job.test.id, key, "withdrawn by its source: killing it");
                f.cancelled = true;
                f.handle.kill();
            }
        }
    }

    /// Exclusive policy: when whole-core attempts take or release cores, moves the running
    /// fractional attempts onto the cores left shared, so exclusivity holds in the kernel too.
    fn reconfine_shared(&mut self) {
        if self.cpu_policy != CpuPolicy::Exclusive {
            return;
        }
        let shared = self.scheduler.shared_cores();
        if shared == self.shared_cores {
            return;
        }
        for f in self.in_flight.iter_mut().filter(|f| f.on_shared_cores) {
            f.handle.set_cores(&shared);
        }
        self.shared_cores = shared;
    }

    /// Waits until an attempt ends, a deadline passes or a signal arrives; returns the ended ones.
    fn wait(&mut self, interrupts: &Interrupts) -> Result<Vec<InFlight>, RunError> {
        let now = Instant::now();
        let next_deadline = self
            .in_flight
            .iter()
            .filter(|f| !f.timed_out)
            .map(|f| f.deadline)
            .min();
        let timeout_ms = next_deadline.map_or(-1, |d| {
            d.saturating_duration_since(now).as_millis().min(60_000) as i32 + 1
        });
        // The source's wake-up only while it is asked for jobs: a stopping run would find it
        // readable again and again.
        let wake = self.jobs.wake_fd().filter(|_| !self.stopping());
        let watched = 1 + usize::from(wake.is_some());
        let mut fds: Vec<libc::pollfd> = std::iter::once(interrupts.fd())
            .chain(wake)
            .chain(self.in_flight.iter().map(|f| f.handle.wait_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: fds is a valid array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            // A signal: nothing is ready, but it may be Ctrl-C itself (checked below).
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(RunError::Io {
                    what: "waiting for tests".into(),
                    source: err,
                });
            }
            for fd in &mut fds {
                fd.revents = 0;
            }
        }
        if (fds[0].revents != 0 || interrupts.arrived()) && !self.interrupted {
            self.interrupted = true;
            tracing::debug!(
                "interrupted: killing {} running attempts",
                self.in_flight.len()
            );
            for f in &mut self.in_flight {
                f.cancelled = true;
                f.handle.kill();
            }
        }
        let now = Instant::now();
        for f in self
            .in_flight
            .iter_mut()
            .filter(|f| !f.timed_out && f.deadline <= now)
        {
            f.timed_out = true;
            f.handle.kill();
        }
        let ready: HashSet<RawFd> = fds[watched..]
            .iter()
            .filter(|p| p.revents != 0)
            .map(|p| p.fd)
            .collect();
        let (ended, running) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|f| ready.contains(&f.handle.wait_fd()));
        self.in_flight = running;
        Ok(ended)
    }

    fn collect(&mut self, f: InFlight) -> Result<(), RunError> {
        let _ = self.scheduler.finished(f.job.key);
        let outcome = f.handle.finish();
        // Before the release empties the scratch directory: the adapter reads its result there.
        let result = attempt::result(
            &f.job.test,
            f.job.attempt,
            f.started_at_ms,
            f.timed_out,
            outcome,
            f.paths.clone(),
        );
        self.release(&f.paths);
        if f.cancelled && !f.timed_out && !result.status.is_final_success() {
            // Killed by Ctrl-C or fail-fast: not a verdict on the test, not recorded.
            self.jobs.cancelled(&f.job);
            return Ok(());
        }
        self.settle(&f.job, result)
    }

    /// Gives back an ended attempt's scratch dir and settles its logs (every writer is gone).
    fn release(&mut self, paths: &AttemptPaths) {
        self.scratch.give_back(paths.scratch.clone());
        for stream in LogStream::BOTH {
            self.logs.finish(&paths.key, stream);
        }
    }

    fn finish(mut self) -> Result<RunOutcome, RunError> {
        let s = &mut self.summary;
        let finished = s.passed + s.failed + s.flaky + s.timed_out + s.oom + s.errors + s.skipped;
        s.not_run = s.total - finished;
        s.duration_ms = self.started.elapsed().as_millis() as u64;
        let run_id = self.run_id.clone();
        if let Some(reason) = self.disk_full.clone().or(self.failed_fast.clone()) {
            self.write(|store| store.note_run(&run_id, &reason))?;
        }
        let state = if self.interrupted || self.disk_full.is_some() {
            RunState::Interrupted
        } else {
            RunState::Finished
        };
        let summary = self.summary.clone();
        self.write(|store| store.finish_run(&run_id, &summary, now_ms(), state))?;
        (self.emit)(&RunEvent::RunFinished {
            run_id: self.run_id.clone(),
            summary: self.summary.clone(),
        });
        Ok(RunOutcome {
            summary: self.summary,
            disk_full: self.disk_full,
            interrupted: self.interrupted,
        })
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Hands offered jobs to the scheduler, keeping each until it is placed.
fn schedule(
    scheduler: &mut Scheduler,
    pending: &mut HashMap<u64, AttemptJob>,
    jobs: Vec<AttemptJob>,
) -> Result<(), RunError> {
    for job in jobs {
        let queued = Job {
            key: job.key,
            // A scenario takes its driver and all its nodes at once.
            resources: job.test.footprint(),
            expected: job.expected,
        };
        scheduler
            .push(queued)
            .map_err(|e| RunError::Unschedulable {
                test: job.test.id.to_string(),
                message: e.to_string(),
            })?;
        pending.insert(job.key, job);
    }
    Ok(())
}
