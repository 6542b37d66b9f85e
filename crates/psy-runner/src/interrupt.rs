//! Ctrl-C (SIGINT), SIGTERM and SIGHUP as a readable file descriptor for the run loop's `poll`;
//! a second one ends psy at once with exit status 130 (the containers die with it, and the next
//! psy marks the run aborted).

use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Exit status of psy when a second signal ends it at once (128 + SIGINT, as shells report).
pub(crate) const EXIT_INTERRUPTED: i32 = 130;

/// Registered signal handlers that write to a socket; unregistered on drop.
#[derive(Debug)]
pub(crate) struct Interrupts {
    rx: UnixStream,
    ids: Vec<signal_hook::SigId>,
}

impl Interrupts {
    pub(crate) fn install() -> io::Result<Self> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        let mut ids = Vec::new();
        let seen = Arc::new(AtomicBool::new(false));
        for sig in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            // Actions run in registration order: the exit only fires once `seen` was set by
            // an earlier signal.
            ids.push(signal_hook::flag::register_conditional_shutdown(
                sig,
                EXIT_INTERRUPTED,
                Arc::clone(&seen),
            )?);
            ids.push(signal_hook::low_level::pipe::register(
                sig,
                tx.try_clone()?,
            )?);
            ids.push(signal_hook::flag::register(sig, Arc::clone(&seen))?);
        }
        Ok(Interrupts { rx, ids })
    }

    /// Readable once a signal arrived.
    pub(crate) fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    /// Whether a signal has arrived, without waiting. Checked after every wake-up, not only when
    /// `poll` reports the pipe: tests killed by the same Ctrl-C can end the `poll` before the
    /// handler has written, and must not be recorded as failures.
    pub(crate) fn arrived(&self) -> bool {
        let mut buf = [0u8; 16];
        matches!((&self.rx).read(&mut buf), Ok(n) if n > 0)
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
