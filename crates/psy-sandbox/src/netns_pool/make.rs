//! Making namespaces on the pool's thread (or a caller's): enter, set up, come back.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Runs `f` with this thread inside `ns`, then moves it back to `host`.
pub(super) fn inside<T>(
    host: &File,
    ns: libc::c_int,
    f: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    // SAFETY: setns/unshare of the network namespace affect only this thread.
    let entered = if ns < 0 {
        unsafe { libc::unshare(libc::CLONE_NEWNET) }
    } else {
        unsafe { libc::setns(ns, libc::CLONE_NEWNET) }
    };
    if entered < 0 {
        return Err(io::Error::last_os_error());
    }
    let result = f();
    // SAFETY: as above; always go home, even if `f` failed.
    if unsafe { libc::setns(host.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        // A thread stuck in the wrong namespace must not make or check more.
        panic!(
            "psy-netns-pool cannot return to the host network namespace: {}",
            io::Error::last_os_error()
        );
    }
    result
}

/// A new namespace with its loopback up.
pub(super) fn new_netns(host: &File) -> io::Result<OwnedFd> {
    inside(host, -1, || {
        loopback_up()?;
        Ok(File::open("/proc/thread-self/ns/net")?.into())
    })
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
