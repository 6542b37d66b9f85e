//! Ctrl-C (SIGINT), SIGTERM and SIGHUP as a readable file descriptor for the run loop's `poll`.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

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
        for sig in [
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
        ] {
            ids.push(signal_hook::low_level::pipe::register(
                sig,
                tx.try_clone()?,
            )?);
        }
        Ok(Interrupts { rx, ids })
    }

    /// Readable once a signal arrived.
    pub(crate) fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
