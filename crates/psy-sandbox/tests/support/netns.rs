//! Network namespaces for root tests: made and entered on throw-away threads, so the test's
//! own threads stay in the host namespace.

use std::fs::File;
use std::os::fd::AsRawFd;

/// A new network namespace.
pub(crate) fn new_netns() -> File {
    std::thread::spawn(|| {
        // SAFETY: affects only this thread, which ends right after.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        File::open("/proc/thread-self/ns/net").expect("open own netns")
    })
    .join()
    .unwrap()
}

/// Runs `f` on a thread inside `ns` and returns its result; sockets made there belong to `ns`.
pub(crate) fn in_ns<T: Send + 'static>(ns: &File, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.try_clone().unwrap();
    std::thread::spawn(move || {
        // SAFETY: affects only this thread.
        assert_eq!(
            unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        f()
    })
    .join()
    .unwrap()
}

/// The host's `TcpExt: IPReversePathFilter` counter: packets its stack dropped as spoofed.
pub(crate) fn rp_filter_drops() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap();
    let mut rows = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (keys, values) = (rows.next().unwrap(), rows.next().unwrap());
    let at = keys
        .split_whitespace()
        .position(|k| k == "IPReversePathFilter")
        .unwrap();
    values.split_whitespace().nth(at).unwrap().parse().unwrap()
}
