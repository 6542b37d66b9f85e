//! A pool of ready network namespaces (loopback already up), filled by a background thread.
//!
//! Creating a network namespace is the most expensive part of starting a container (about
//! 0.4 ms of the `clone3` here, more on busy hosts), so as root the container joins a
//! pre-made one with `setns` instead of asking `clone3` for a new one. Each namespace is
//! handed out once; it dies with the container that joined it.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

/// Ready namespaces waiting for a container.
#[derive(Debug)]
pub(crate) struct NetnsPool {
    ready: Mutex<Receiver<OwnedFd>>,
}

impl NetnsPool {
    /// Starts the filler thread; it keeps up to `size` namespaces ready.
    pub(crate) fn start(size: usize) -> io::Result<Self> {
        let (tx, rx) = sync_channel(size);
        let host = File::open("/proc/thread-self/ns/net")?;
        std::thread::Builder::new()
            .name("psy-netns-pool".into())
            .spawn(move || fill(&host, &tx))?;
        Ok(NetnsPool {
            ready: Mutex::new(rx),
        })
    }

    /// A ready namespace, or `None` if the pool is momentarily empty (the caller then makes a
    /// fresh one with `CLONE_NEWNET`, so it never waits).
    pub(crate) fn take(&self) -> Option<OwnedFd> {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_recv()
            .ok()
    }
}

fn fill(host: &File, tx: &SyncSender<OwnedFd>) {
    loop {
        let netns = match new_netns(host) {
            Ok(ns) => ns,
            Err(e) => {
                tracing::warn!(
                    "pre-creating a network namespace failed; containers create their own: {e}"
                );
                return;
            }
        };
        if tx.send(netns).is_err() {
            return; // the sandbox is gone
        }
    }
}

/// Moves this thread into a new network namespace, brings its loopback up, keeps an fd to it
/// and moves the thread back.
fn new_netns(host: &File) -> io::Result<OwnedFd> {
    let check = |r: libc::c_int| {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: unshare/setns of the network namespace affect only this thread.
    unsafe { check(libc::unshare(libc::CLONE_NEWNET))? };
    let made = loopback_up().and_then(|()| File::open("/proc/thread-self/ns/net"));
    // SAFETY: as above; always go home, even if the set-up failed.
    let back = unsafe { check(libc::setns(host.as_raw_fd(), libc::CLONE_NEWNET)) };
    if let Err(e) = back {
        // A thread stuck in the wrong namespace must not make more.
        panic!("psy-netns-pool cannot return to the host network namespace: {e}");
    }
    Ok(made?.into())
}

fn loopback_up() -> io::Result<()> {
    // SAFETY: a datagram socket and an ifreq on the stack.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(io::Error::last_os_error());
        }
        let sock = OwnedFd::from_raw_fd(sock);
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
