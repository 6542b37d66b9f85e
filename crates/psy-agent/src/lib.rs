//! `psy agent`: a member of the fleet. It registers its capacity and labels with a
//! `psy server`, claims jobs that fit what it has free, holds each under a lease it renews by
//! heartbeat, runs it with the same engine and sandbox as `psy run`, and reports the result
//! (with the end of its output) under the lease's fencing token.
//!
//! Threads: the engine's loop runs on the calling thread (it creates every container, see
//! `psy_runner::run`); a claimer ([`claim`]), a heartbeat thread ([`heartbeat`]) and a reporter
//! ([`report`]) talk to the server, so the loop never waits on HTTP. What they share is in
//! [`source`], whose [`source::LeasedJobs`] is the loop's job source.
//!
//! Faults: a server or database that blinked (unreachable, 5xx) is retried with capped
//! exponential backoff and jitter, for claims, heartbeats and reports alike; a report is dropped
//! only when the server refuses it for good (409: the lease moved on). SIGINT or SIGTERM stops
//! claiming and cancels the running attempts; their leases and those of the jobs claimed ahead
//! and not started are released (their jobs are queued again at once, to run elsewhere);
//! results already made are still reported, for a short grace, before the agent exits 0.

mod batch;
mod claim;
mod heartbeat;
mod logs;
mod project;
mod report;
mod source;
mod time;

pub use logs::LOG_BLOB_CAP;
pub use report::OUTPUT_CAP;

use psy_fleet::retry;
use psy_fleet::wire::{Agent, Registration};
use psy_fleet::{FleetClient, FleetError, SnapshotMaterialiser};
use psy_model::{Capacity, RunEvent};
use psy_runner::engine::{AgentRun, Engine, PrepareError};
use psy_runner::layout::StateDir;
use psy_runner::RunError;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The default time between two heartbeats of a lease (shorter for leases that last less than
/// three times as long).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// How long a stopping agent keeps trying to deliver the results it has.
const REPORT_GRACE: Duration = Duration::from_secs(30);
/// How long one call to the server may take before it is given up (and tried again).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What `psy agent` was asked to be.
#[derive(Debug)]
pub struct AgentOptions {
    /// The server, with the agent's token.
    pub client: FleetClient,
    /// Unique in the fleet (the host name by default).
    pub name: String,
    /// What the agent offers: the machine, or the share it was given.
    pub capacity: Capacity,
    /// Labels jobs may require.
    pub labels: BTreeMap<String, String>,
    /// Its own directory: `state/` (store, logs, scratch, volumes, lock: hidden from tests) and
    /// `snapshots/` (materialised snapshots and their blobs: outside `state/`, since a job's
    /// project lies there).
    pub work_dir: PathBuf,
    /// Between heartbeats of a lease.
    pub heartbeat: Duration,
    /// Tests with `privileged = true` may run.
    pub allow_privileged: bool,
    /// Makes `ProjectSource::Snapshot` jobs runnable; without one they are reported as errors.
    pub snapshots: Option<Arc<dyn SnapshotMaterialiser>>,
    /// Recorded with the engine run.
    pub command_line: String,
}

/// Why the agent stopped other than by a signal.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The server refused the agent (its token, its registration): the user's to fix.
    #[error("{0}")]
    Refused(String),
    /// The engine could not be prepared in the work dir.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// The engine's run failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The agent's threads could not be started.
    #[error("starting the agent: {0}")]
    Io(#[from] std::io::Error),
    /// The disk holding the work dir filled up: the engine stopped.
    #[error("{0}; the agent stopped (results already made were reported)")]
    DiskFull(String),
}

impl AgentError {
    /// Whether the user must change something (exit 2) rather than psy or the host failing.
    pub fn is_usage(&self) -> bool {
        match self {
            AgentError::Refused(_) => true,
            AgentError::Prepare(e) => e.is_usage(),
            AgentError::Run(_) | AgentError::Io(_) | AgentError::DiskFull(_) => false,
        }
    }
}

/// How the agent ended.
#[derive(Debug, Default)]
pub struct Stopped {
    /// Attempts the engine finished here (reported, or refused for a moved lease).
    pub attempts: usize,
}

/// Runs the agent until SIGINT, SIGTERM or SIGHUP (then `Ok`), or until the server refuses it.
pub fn run(options: AgentOptions) -> Result<Stopped, AgentError> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        // Actions run in registration order: once the agent is stopping, a signal ends it at
        // once (130, as a second Ctrl-C ends `psy run`).
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))?;
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    // The work dir first: a second agent on it is refused before it registers anything.
    let prepared = Engine::prepare_agent(AgentRun {
        work_dir: state_dir(&options.work_dir),
        capacity: options.capacity.clone(),
        allow_privileged: options.allow_privileged,
        describe: format!("psy agent {:?} of {}", options.name, options.client.base()),
        command_line: options.command_line.clone(),
    })?;

    // Each call is given up after a while (then retried): a server that stopped answering
    // must not hold a heartbeat until the lease is gone.
    let client = options.client.clone().with_timeout(REQUEST_TIMEOUT);
    let agent = match register(&client, &options, &stop) {
        Ok(Some(agent)) => agent,
        Ok(None) => {
            tracing::info!("stopped before registering");
            prepared.close();
            return Ok(Stopped::default());
        }
        Err(e) => {
            prepared.close();
            return Err(e);
        }
    };
    tracing::info!(
        name = %agent.name,
        registration = ?agent.registration,
        cpus = agent.cpus,
        memory_bytes = agent.memory_bytes,
        labels = ?agent.labels,
        "registered with {}",
        options.client.base()
    );
    let run_id = prepared.run_id().clone();
    let (shared, wake) = source::Shared::new(client, options.name.clone(), stop.clone())?;
    let (reports, queue) = std::sync::mpsc::channel();

    let abandon = Arc::new(AtomicBool::new(false));
    let reporter = {
        let (shared, abandon) = (Arc::clone(&shared), Arc::clone(&abandon));
        std::thread::Builder::new()
            .name("psy-reporter".into())
            .spawn(move || report::run(shared, queue, abandon))?
    };
    let beats_done = Arc::new(AtomicBool::new(false));
    let heartbeats = {
        let (shared, done) = (Arc::clone(&shared), Arc::clone(&beats_done));
        std::thread::Builder::new()
            .name("psy-heartbeat".into())
            .spawn(move || heartbeat::run(shared, done))?
    };
    let claimer = claim::Claimer {
        shared: Arc::clone(&shared),
        labels: options.labels.clone(),
        admission: prepared.admission(),
        projects: project::Projects::new(
            &options.name,
            options.work_dir.clone(),
            options.snapshots.clone(),
        ),
        reports: reports.clone(),
        run_id: run_id.clone(),
        state: StateDir::at(&state_dir(&options.work_dir)),
        heartbeat: options.heartbeat,
        registration: agent.registration,
    };
    let claimer = std::thread::Builder::new()
        .name("psy-claimer".into())
        .spawn(move || claimer.run())?;

    let mut jobs = source::LeasedJobs::new(Arc::clone(&shared), wake, reports);
    let mut attempts = 0;
    let outcome = prepared.run(&mut jobs, &mut |event| {
        log_event(event, &mut attempts);
    });

    // Stop claiming, deliver what is made, then stop renewing.
    stop.store(true, Ordering::SeqCst);
    shared.changed.notify_all();
    let _ = claimer.join();
    // Claimed but never offered: given back, the jobs run elsewhere (the engine gave back
    // those it was offered and did not finish).
    jobs.release_unoffered();
    drop(jobs);
    let deadline = Instant::now() + REPORT_GRACE;
    while !reporter.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    abandon.store(true, Ordering::SeqCst);
    let _ = reporter.join();
    beats_done.store(true, Ordering::SeqCst);
    let _ = heartbeats.join();

    let outcome = outcome?;
    if let Some(why) = shared.lock().fatal.take() {
        return Err(AgentError::Refused(why));
    }
    if let Some(why) = outcome.disk_full {
        return Err(AgentError::DiskFull(why));
    }
    tracing::info!(
        attempts,
        interrupted = outcome.interrupted,
        "agent {:?} stopped (engine run {run_id})",
        options.name
    );
    Ok(Stopped { attempts })
}

/// Registers the agent, waiting out a server that cannot answer yet; `None` if a signal came
/// first.
fn register(
    client: &FleetClient,
    options: &AgentOptions,
    stop: &AtomicBool,
) -> Result<Option<Agent>, AgentError> {
    let registration = Registration {
        name: options.name.clone(),
        cpus: f64::from(options.capacity.cpu_millis) / 1000.0,
        memory_bytes: options.capacity.memory_bytes,
        labels: options.labels.clone(),
    };
    let mut backoff = retry::default_backoff();
    let stopping = || stop.load(Ordering::SeqCst);
    let what = format!("registering agent {:?}", options.name);
    match retry::retry(&what, &mut backoff, &stopping, || {
        client.post::<_, Agent>("/api/agents/register", &registration)
    }) {
        Ok(agent) => Ok(Some(agent)),
        Err(_) if stopping() => Ok(None),
        Err(e) => Err(AgentError::Refused(registration_refused(&e))),
    }
}

/// What to tell the user when the server refuses the registration.
fn registration_refused(e: &FleetError) -> String {
    match e.status() {
        Some(401) => format!(
            "the server refused the agent's token (give an agent token with --token or \
             PSY_TOKEN; `psy server token create --role agent` makes one): {e}"
        ),
        Some(403) => format!(
            "the token is not an agent's (`psy server token create --role agent` makes one): {e}"
        ),
        _ => format!("the server refused to register the agent: {e}"),
    }
}

/// The engine's events, in the agent's log.
fn log_event(event: &RunEvent, attempts: &mut usize) {
    match event {
        RunEvent::RunStarted { run_id, .. } => {
            tracing::info!(%run_id, "the engine is ready; claiming jobs");
        }
        RunEvent::Warning { message } => tracing::warn!("{message}"),
        RunEvent::AttemptStarted {
            test_id, attempt, ..
        } => tracing::debug!(%test_id, attempt, "started"),
        RunEvent::AttemptFinished { result } => {
            *attempts += 1;
            tracing::info!(
                test = %result.test_id,
                attempt = result.attempt,
                status = ?result.status,
                duration_ms = result.duration_ms,
                "finished"
            );
        }
        _ => {}
    }
}

/// Where in `work_dir` the agent keeps its engine's state (the part hidden from tests).
pub fn state_dir(work_dir: &std::path::Path) -> PathBuf {
    work_dir.join("state")
}
