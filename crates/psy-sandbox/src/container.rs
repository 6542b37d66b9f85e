//! A running container as seen from psy: its pidfd, status pipe and cgroup, and how it ends.

use crate::cgroup::{Cgroup, CgroupStats};
use crate::child::{
    MSG_HELD, MSG_IO_READ, MSG_IO_WRITE, MSG_LEN, MSG_SETUP_ERROR, MSG_TEST_EXITED,
};
use crate::error::{SandboxError, SetupStep};
use crate::sys;
use psy_model::ExitInfo;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// How a container ended.
#[derive(Debug)]
pub struct Outcome {
    /// How the test process ended (`None` fields when it never started).
    pub exit: ExitInfo,
    /// Set when the container could not be set up or the command could not be executed.
    pub setup_error: Option<SandboxError>,
    /// CPU time, peak memory and OOM kills measured by the cgroup (empty without cgroups).
    pub stats: CgroupStats,
    /// From `spawn` to the init's exit.
    pub wall_time: Duration,
    /// Bytes `(sent, received)` on the test's own `eth0` (`network = ...`); `None` for
    /// loopback-only containers.
    pub network_bytes: Option<(u64, u64)>,
}

/// A started container. Drop kills it (and everything in it) if it was not waited for.
#[derive(Debug)]
pub struct Container {
    pub(crate) pid: libc::pid_t,
    pub(crate) pidfd: OwnedFd,
    pub(crate) status_rx: OwnedFd,
    pub(crate) cgroup: Option<Box<dyn Cgroup>>,
    pub(crate) started: Instant,
    pub(crate) exited_at: Option<Instant>,
    pub(crate) reaped: bool,
    /// User + system time of the init and everything it reaped (the whole PID namespace).
    pub(crate) rusage_cpu: Option<Duration>,
    /// Removes the cgroup in the background once measured (`None`: remove it here).
    pub(crate) remover: Option<crate::cgroup_pool::Remover>,
    /// The size-limited scratch filesystem, released with the container.
    pub(crate) _disk: Option<crate::disk::ScratchDisk>,
    /// Loop devices of the volumes, released with the container.
    pub(crate) _volumes: Vec<crate::disk::Attached>,
    /// The pooled network namespace: back to the pool when the (reaped) container is dropped.
    pub(crate) _netns: Option<crate::netns_pool::NetnsLease>,
    /// The user namespace slot: free for the next container once this one is dropped (reaped).
    pub(crate) _slot: Option<crate::userns::SlotLease>,
    /// A held container's entry (`ContainerSpec::hold`).
    pub(crate) entry: Option<crate::JoinEntry>,
}

impl Container {
    /// The host pid of the container's init.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// A pidfd of the init; it becomes readable when the init has exited (for async waiting).
    pub fn pidfd(&self) -> RawFd {
        self.pidfd.as_raw_fd()
    }

    /// Blocks until the init exits or `timeout` passes; true if it exited.
    pub fn wait_timeout(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let ms = match deadline {
                None => -1,
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128) as i32,
            };
            let mut pfd = libc::pollfd {
                fd: self.pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r > 0 {
                self.exited_at.get_or_insert_with(Instant::now);
                return Ok(true);
            }
            if r == 0 {
                return Ok(false);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// A held container (`ContainerSpec::hold`): waits until its init has set everything up
    /// and returns how a forked process joins it. An error when the set-up failed (the init
    /// exited; [`Container::finish`] then tells nothing more), when `timeout` passed, or when
    /// the container is not held.
    pub fn wait_held(&mut self, timeout: Duration) -> Result<&crate::JoinEntry, SandboxError> {
        let Some(entry) = &self.entry else {
            return Err(SandboxError::NotHeld);
        };
        let mut pfd = libc::pollfd {
            fd: self.status_rx.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let ready = loop {
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r >= 0 || sys::errno() != libc::EINTR {
                break r > 0;
            }
        };
        if !ready {
            return Err(SandboxError::HoldTimeout { timeout });
        }
        let mut msg = [0u8; MSG_LEN];
        // SAFETY: reading one message into a local buffer; messages are written whole.
        let n = unsafe { libc::read(self.status_rx.as_raw_fd(), msg.as_mut_ptr().cast(), MSG_LEN) };
        let field = |i: usize| i32::from_ne_bytes([msg[i], msg[i + 1], msg[i + 2], msg[i + 3]]);
        if n == MSG_LEN as isize && field(0) == MSG_HELD {
            return Ok(entry);
        }
        if n == MSG_LEN as isize && field(0) == MSG_SETUP_ERROR {
            if let Some(step) = SetupStep::from_code(field(4)) {
                return Err(SandboxError::Setup {
                    step,
                    errno: field(8),
                });
            }
        }
        Err(SandboxError::HoldFailed)
    }

    /// Records that the caller observed the exit (e.g. through an async wait on [`Self::pidfd`]).
    pub fn mark_exited(&mut self) {
        self.exited_at.get_or_insert_with(Instant::now);
    }

    /// Moves the container onto `cores` (when it has a cpuset).
    pub fn set_cores(&self, cores: &[u32]) -> Result<(), crate::cgroup::CgroupError> {
        match &self.cgroup {
            Some(cg) => cg.set_cores(cores),
            None => Ok(()),
        }
    }

    /// Kills the container: the init (which takes its PID namespace down) and, through the
    /// cgroup, anything else in it.
    pub fn kill(&self) {
        let _ = sys::pidfd_send_signal(self.pidfd.as_raw_fd(), libc::SIGKILL);
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.kill_all() {
                tracing::warn!(pid = self.pid, "killing the container's cgroup: {e}");
            }
        }
    }

    /// Sends `signal` to every process the test started (its cgroup's), not to the init: a
    /// graceful stop (`SIGTERM`) lets the test's own handlers run; the init exits when the
    /// test's first process does. Returns how many processes were signalled.
    pub fn signal(&self, signal: libc::c_int) -> Result<usize, crate::cgroup::CgroupError> {
        let Some(cg) = &self.cgroup else {
            return Ok(0);
        };
        let pids = cg.pids()?;
        for pid in &pids {
            // SAFETY: kill(2) on a pid of the container's cgroup; a pid that just exited is fine.
            unsafe { libc::kill(*pid as libc::pid_t, signal) };
        }
        Ok(pids.len())
    }

    /// Freezes (`true`) or thaws everything the test started (its cgroup; the init, which only
    /// waits, is not in it). Without a cgroup there is nothing to freeze: an error.
    pub fn freeze(&self, frozen: bool) -> Result<(), crate::cgroup::CgroupError> {
        match &self.cgroup {
            Some(cg) => cg.freeze(frozen),
            None => Err(crate::cgroup::CgroupError::InvalidName {
                name: format!("container {}", self.pid),
                why: "it has no cgroup (cgroups are not available): it cannot be paused",
            }),
        }
    }

    /// Reaps the init (blocking until it exits), reads what it reported, measures and removes
    /// the cgroup. Nothing of the container survives this call.
    pub fn finish(mut self) -> Outcome {
        if self.exited_at.is_none() {
            let _ = self.wait_timeout(None);
        }
        self.reap();
        let wall_time = self.exited_at.unwrap_or_else(Instant::now) - self.started;
        let (exit, setup_error, [task_read, task_write]) = self.read_status();
        let mut stats = match self.cgroup.take() {
            Some(cg) => finish_cgroup(cg, self.pid, self.remover.as_ref()),
            None => CgroupStats::default(),
        };
        stats.cpu_time = stats.cpu_time.or(self.rusage_cpu);
        // The cgroup counts device IO only where it throttles; elsewhere the kernel's per-task
        // accounting (storage bytes the test and its reaped children caused) fills in.
        stats.io_read_bytes = stats.io_read_bytes.or(task_read);
        stats.io_write_bytes = stats.io_write_bytes.or(task_write);
        Outcome {
            exit,
            setup_error,
            stats,
            wall_time,
            network_bytes: self._netns.as_ref().and_then(|n| n.traffic()),
        }
    }

    fn reap(&mut self) {
        if self.reaped {
            return;
        }
        let mut wstatus = 0;
        // SAFETY: rusage is plain data filled by wait4.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::wait4(self.pid, &mut wstatus, libc::__WALL, &mut usage) };
            if r >= 0 {
                let tv = |t: libc::timeval| {
                    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
                };
                self.rusage_cpu = Some(tv(usage.ru_utime) + tv(usage.ru_stime));
                break;
            }
            if sys::errno() != libc::EINTR {
                break;
            }
        }
        self.reaped = true;
    }

    /// How the test ended, the set-up error if any, and the storage bytes `[read, written]`
    /// the init reported.
    fn read_status(&self) -> (ExitInfo, Option<SandboxError>, [Option<u64>; 2]) {
        let mut exit = ExitInfo::default();
        let mut setup_error = None;
        let mut io = [None, None];
        let mut buf = [0u8; MSG_LEN * 8];
        // The init wrote everything before it exited; never wait for EOF (other inits may hold
        // a copy of the write end for a moment).
        // SAFETY: reading into a local buffer from a non-blocking pipe we own.
        let n = unsafe {
            libc::read(
                self.status_rx.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let n = if n > 0 { n as usize } else { 0 };
        for msg in buf[..n].chunks_exact(MSG_LEN) {
            let field = |i: usize| i32::from_ne_bytes([msg[i], msg[i + 1], msg[i + 2], msg[i + 3]]);
            match field(0) {
                MSG_SETUP_ERROR => {
                    if let Some(step) = SetupStep::from_code(field(4)) {
                        setup_error = Some(SandboxError::Setup {
                            step,
                            errno: field(8),
                        });
                    }
                }
                MSG_TEST_EXITED => {
                    let w = field(4);
                    if libc::WIFEXITED(w) {
                        exit.code = Some(libc::WEXITSTATUS(w));
                    } else if libc::WIFSIGNALED(w) {
                        exit.signal = Some(libc::WTERMSIG(w));
                    }
                }
                kind @ (MSG_IO_READ | MSG_IO_WRITE) => {
                    let value = u64::from(field(4) as u32) | (u64::from(field(8) as u32) << 32);
                    io[usize::from(kind == MSG_IO_WRITE)] = Some(value);
                }
                _ => {}
            }
        }
        if exit.code.is_none() && exit.signal.is_none() && setup_error.is_none() {
            // The init itself was killed (timeout, or the OOM killer chose it).
            exit.signal = Some(libc::SIGKILL);
        }
        (exit, setup_error, io)
    }
}

/// Measures and removes the cgroup of a reaped container. Its init is gone, so the kernel has
/// already killed the rest of the PID namespace; `remove` still kills stragglers if any.
fn finish_cgroup(
    cg: Box<dyn Cgroup>,
    pid: libc::pid_t,
    remover: Option<&crate::cgroup_pool::Remover>,
) -> CgroupStats {
    let stats = cg.stats().unwrap_or_else(|e| {
        tracing::warn!(pid, "reading the container's cgroup statistics: {e}");
        CgroupStats::default()
    });
    match remover {
        Some(remover) => remover.remove(cg),
        None => {
            if let Err(e) = cg.remove() {
                tracing::warn!(pid, "removing the container's cgroup: {e}");
            }
        }
    }
    stats
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            self.reap();
            if let Some(cg) = self.cgroup.take() {
                finish_cgroup(cg, self.pid, self.remover.as_ref());
            }
        }
    }
}
