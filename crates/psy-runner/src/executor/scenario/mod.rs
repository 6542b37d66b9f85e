//! Multi-node scenarios (`[[test.node]]`): one attempt is a private network, a container per
//! node and the test's own command as the *driver*, which injects faults with `psy fault`.
//!
//! The run loop sees a scenario as one [`Running`] attempt: its wait descriptor becomes readable
//! when the driver has ended and every node is stopped. The work happens on a thread of its own
//! ([`run::Scenario`]), because bringing nodes up, probing them and serving the driver's fault
//! requests must not hold up the loop that starts and settles every other test. The thread
//! starts containers through a clone of the run's [`ContainerExecutor`] (same sandbox, images
//! and masks); their inits are psy's children through the zygote, so they do not depend on the
//! thread that asked for them.
//!
//! Files of an attempt, beside its stdout log (`layout::scenario_file`): each node's
//! `node.<name>.out` / `.err` (appended across its restarts) and `scenario.jsonl`, the timeline
//! of node starts, readiness, exits and faults, which `psy show` prints.

mod faults;
mod net;
mod nodes;
mod ready;
mod run;
mod timeline;

use super::{AttemptRequest, ContainerExecutor, ExecOutcome, Running};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Starts the scenario of `req` (a test with nodes) on a thread of its own.
pub(super) fn start(
    executor: ContainerExecutor,
    req: AttemptRequest<'_>,
) -> Result<Box<dyn Running>, String> {
    let done = Arc::new(EventFd::new().map_err(|e| format!("scenario of {}: {e}", req.test.id))?);
    let stop = Arc::new(EventFd::new().map_err(|e| format!("scenario of {}: {e}", req.test.id))?);
    let scenario = run::Scenario::new(executor, req, Arc::clone(&stop));
    let name = format!("psy-scenario-{}", scenario.key());
    let thread_done = Arc::clone(&done);
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let outcome = scenario.run();
            thread_done.signal();
            outcome
        })
        .map_err(|e| format!("starting a scenario thread: {e}"))?;
    Ok(Box::new(ScenarioRun {
        done,
        stop,
        thread: Some(thread),
    }))
}

/// A running scenario, as the run loop sees it.
#[derive(Debug)]
struct ScenarioRun {
    /// Readable once the scenario's thread has ended.
    done: Arc<EventFd>,
    /// Written by [`Running::kill`]: the thread stops everything.
    stop: Arc<EventFd>,
    thread: Option<JoinHandle<ExecOutcome>>,
}

impl Running for ScenarioRun {
    fn wait_fd(&self) -> RawFd {
        self.done.as_raw_fd()
    }

    fn kill(&mut self) {
        self.stop.signal();
    }

    fn set_cores(&mut self, _cores: &[u32]) {
        // Scenarios run on shared cores (their containers have no cpuset of their own).
    }

    fn finish(mut self: Box<Self>) -> ExecOutcome {
        let Some(thread) = self.thread.take() else {
            return ExecOutcome::default();
        };
        thread.join().unwrap_or_else(|_| ExecOutcome {
            error: Some("the scenario's thread panicked (a bug in psy)".into()),
            ..ExecOutcome::default()
        })
    }
}

/// An eventfd: a counter that is readable (pollable) once signalled.
#[derive(Debug)]
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    fn new() -> std::io::Result<EventFd> {
        // SAFETY: eventfd(2) returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Makes the descriptor readable (for good: nobody reads the counter back).
    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a local to our eventfd.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Whether [`Self::signal`] was called.
    pub(crate) fn is_signalled(&self) -> bool {
        let mut fds = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd on the stack, no wait.
        unsafe { libc::poll(&mut fds, 1, 0) > 0 }
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}
