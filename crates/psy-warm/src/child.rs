//! One forked test: its pid and a pidfd the driver polls and kills it through.
//!
//! The worker keeps an ended child as a zombie until the driver has waited for it
//! ([`crate::WarmParent::wait`]), so the pidfd opened from the reported pid can never name a
//! recycled pid.

use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a warm child ended, as its parent saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildExit {
    /// It exited with this status (pytest's: 0 passed or skipped, 1 failed; the test's own with
    /// `os._exit`).
    Code(i32),
    /// It was killed by this signal (a kill on timeout, the OOM killer, a crash).
    Signal(i32),
}

/// A warm child that has ended and been reaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    pub pid: u32,
    pub nodeid: String,
    /// Its result file (the request's `result`).
    pub result: PathBuf,
    pub exit: ChildExit,
}

/// A test running in a fork of the warm worker.
#[derive(Debug)]
pub struct WarmChild {
    pub(crate) pid: u32,
    pub(crate) nodeid: String,
    pub(crate) result: PathBuf,
    pidfd: OwnedFd,
}

impl WarmChild {
    pub(crate) fn open(pid: u32, nodeid: String, result: PathBuf) -> io::Result<WarmChild> {
        let raw = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a pid"))?;
        let pidfd = pidfd_open(raw, PidfdFlags::empty())?;
        Ok(WarmChild {
            pid,
            nodeid,
            result,
            pidfd,
        })
    }

    /// Closes the pidfd: the worker may reap the child (and free its pid) after this.
    pub(crate) fn into_ended(self, exit: ChildExit) -> Ended {
        Ended {
            pid: self.pid,
            nodeid: self.nodeid,
            result: self.result,
            exit,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn nodeid(&self) -> &str {
        &self.nodeid
    }

    /// Where the child writes its result (the request's `result`).
    pub fn result_path(&self) -> &Path {
        &self.result
    }

    /// SIGKILL through the pidfd (a timeout); its exit still comes through the worker.
    pub fn kill(&self) -> io::Result<()> {
        pidfd_send_signal(&self.pidfd, Signal::KILL).map_err(io::Error::from)
    }

    /// Whether the child ended within `timeout` (`None`: wait as long as it takes).
    pub fn wait_timeout(&self, timeout: Option<Duration>) -> io::Result<bool> {
        readable_within(self.pidfd.as_fd(), timeout)
    }
}

/// Whether `fd` became readable within `timeout` (`None`: as long as it takes).
pub(crate) fn readable_within(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    let timespec = timeout.map(|t| Timespec {
        tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    loop {
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match poll(&mut fds, timespec.as_ref()) {
            Ok(ready) => return Ok(ready > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The pidfd: readable once the child has ended, for a run loop's `poll`.
impl AsFd for WarmChild {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }
}
