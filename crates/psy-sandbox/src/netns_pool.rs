//! A pool of ready loopback-only network namespaces, made ahead and recycled.
//!
//! Creating a network namespace and the kernel's asynchronous tear-down of it are the most
//! expensive part of starting a container (together about a quarter of the CPU of a suite of
//! trivial tests here), so as root a container joins a ready namespace with `setns` instead of
//! asking `clone3` for a new one, and when the container is gone the namespace comes back here.
//!
//! A namespace is only reused when nothing of its last user can reach the next one: tests run
//! without `CAP_NET_ADMIN` and with `/proc/sys` read-only (see `child.rs`), so they cannot
//! change interfaces, addresses, routes, filters or sysctls; the pool then checks that no
//! socket is left (not even `TIME_WAIT`, which would make the next test's `bind` fail) and
//! that `lo` is still the only interface. Anything else is dropped and the kernel destroys it.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex};

/// Recycled namespaces kept beyond the made-ahead target (bursts of returns).
const MAX_READY: usize = 64;

/// Ready namespaces waiting for a container.
#[derive(Debug)]
pub(crate) struct NetnsPool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// How many fresh namespaces to keep ready.
    target: usize,
    /// The host's network namespace, to come back to after making or checking one.
    host: File,
}

#[derive(Debug, Default)]
struct State {
    ready: VecDeque<OwnedFd>,
    /// Given back by finished containers, not yet checked.
    returned: Vec<OwnedFd>,
    closed: bool,
    failed: bool,
}

/// A namespace lent to one container: given back to the pool when dropped, which must happen
/// only after every process of the container is gone (its init reaped).
#[derive(Debug)]
pub(crate) struct NetnsLease {
    fd: Option<OwnedFd>,
    shared: Arc<Shared>,
    /// Its `eth0` on the run's bridge, if it got one: such a namespace is not reused (its
    /// interface, address and shaping belong to that test) and the kernel deletes the veth
    /// pair with it.
    attachment: Option<crate::net::Attachment>,
}

impl NetnsLease {
    /// Joins the namespace to `network` with `shaping` (see [`crate::net::RunNetwork::attach`]).
    pub(crate) fn attach(
        &mut self,
        network: &crate::net::RunNetwork,
        index: u32,
        shaping: crate::net::Shaping,
    ) -> Result<(), crate::net::NetError> {
        let fd = self.fd.as_ref().expect("held until drop");
        self.attachment = Some(network.attach(fd, index, true, Some(shaping))?);
        Ok(())
    }

    /// A second descriptor of the namespace, for the container's init to join.
    pub(crate) fn dup(&self) -> io::Result<OwnedFd> {
        self.fd.as_ref().expect("held until drop").try_clone()
    }
}

impl Drop for NetnsLease {
    fn drop(&mut self) {
        if let Some(attachment) = self.attachment.take() {
            attachment.release_with_namespace();
            return; // the fd closes: the kernel destroys the namespace and the veth pair
        }
        if let Some(fd) = self.fd.take() {
            let mut state = self.shared.lock();
            if !state.closed {
                state.returned.push(fd);
                self.shared.wake.notify_one();
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl NetnsPool {
    /// Starts the filler thread; it keeps up to `target` fresh namespaces ready.
    pub(crate) fn start(target: usize) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            target,
            host: File::open("/proc/thread-self/ns/net")?,
        });
        let filler = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("psy-netns-pool".into())
            .spawn(move || fill(&filler.host, &filler))?;
        Ok(NetnsPool { shared })
    }

    /// A ready namespace, or `None` if the pool is momentarily empty (the caller then makes a
    /// fresh one with `CLONE_NEWNET`, so it never waits).
    pub(crate) fn take(&self) -> Option<NetnsLease> {
        let mut state = self.shared.lock();
        let fd = state.ready.pop_front()?;
        if state.ready.len() < self.shared.target {
            self.shared.wake.notify_one();
        }
        Some(NetnsLease {
            fd: Some(fd),
            shared: Arc::clone(&self.shared),
            attachment: None,
        })
    }
}

impl NetnsPool {
    /// A ready namespace, made now on the calling thread if none is waiting.
    pub(crate) fn take_or_make(&self) -> io::Result<NetnsLease> {
        if let Some(lease) = self.take() {
            return Ok(lease);
        }
        Ok(NetnsLease {
            fd: Some(new_netns(&self.shared.host)?),
            shared: Arc::clone(&self.shared),
            attachment: None,
        })
    }
}

impl Drop for NetnsPool {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.closed = true;
        state.ready.clear();
        state.returned.clear();
        self.shared.wake.notify_all();
    }
}

/// What the filler thread does next.
enum Work {
    Check(Vec<OwnedFd>),
    Create,
}

fn fill(host: &File, shared: &Shared) {
    loop {
        let work = {
            let mut state = shared.lock();
            loop {
                if state.closed {
                    return;
                }
                if !state.returned.is_empty() {
                    break Work::Check(std::mem::take(&mut state.returned));
                }
                if !state.failed && state.ready.len() < shared.target {
                    break Work::Create;
                }
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        match work {
            Work::Check(returned) => {
                let clean: Vec<OwnedFd> = returned
                    .into_iter()
                    .filter(|ns| match is_pristine(host, ns) {
                        Ok(clean) => clean,
                        Err(e) => {
                            tracing::debug!("checking a used network namespace: {e}");
                            false
                        }
                    })
                    .collect();
                let mut state = shared.lock();
                for ns in clean {
                    if state.ready.len() < MAX_READY.max(shared.target) {
                        state.ready.push_back(ns);
                    }
                }
            }
            Work::Create => match new_netns(host) {
                Ok(ns) => shared.lock().ready.push_back(ns),
                Err(e) => {
                    tracing::warn!(
                        "pre-creating a network namespace failed; containers create their own: {e}"
                    );
                    shared.lock().failed = true;
                }
            },
        }
    }
}

/// Runs `f` with this thread inside `ns`, then moves it back to `host`.
fn inside<T>(host: &File, ns: libc::c_int, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
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
fn new_netns(host: &File) -> io::Result<OwnedFd> {
    inside(host, -1, || {
        loopback_up()?;
        Ok(File::open("/proc/thread-self/ns/net")?.into())
    })
}

/// Whether a namespace given back is as its next user must find it: no socket of any kind
/// left (listening, connected, closing or `TIME_WAIT`) and no interface but `lo`.
fn is_pristine(host: &File, ns: &OwnedFd) -> io::Result<bool> {
    inside(host, ns.as_raw_fd(), || {
        let read = |name: &str| -> io::Result<String> {
            let mut text = String::new();
            File::open(format!("/proc/thread-self/net/{name}"))?.read_to_string(&mut text)?;
            Ok(text)
        };
        Ok(sockstat_is_empty(&read("sockstat")?)
            && match read("sockstat6") {
                Ok(text) => sockstat_is_empty(&text),
                // A kernel without IPv6 has no IPv6 sockets.
                Err(e) if e.kind() == io::ErrorKind::NotFound => true,
                Err(e) => return Err(e),
            }
            && read("unix")?.lines().count() <= 1
            && only_loopback(&read("dev")?))
    })
}

/// `TCP: inuse 0 orphan 0 tw 0 alloc 3 mem 0`: every per-namespace count (`inuse`, `tw`) is 0.
/// (`sockets: used`, `alloc`, `orphan` and `mem` are host-wide.)
fn sockstat_is_empty(text: &str) -> bool {
    text.lines().all(|line| {
        let mut words = line.split_whitespace().skip(1);
        let mut empty = true;
        while let (Some(key), Some(value)) = (words.next(), words.next()) {
            if matches!(key, "inuse" | "tw") && value != "0" {
                empty = false;
            }
        }
        empty
    })
}

/// `/proc/net/dev`: two header lines, then one line per interface.
fn only_loopback(text: &str) -> bool {
    let mut interfaces = text.lines().skip(2).filter_map(|l| l.split(':').next());
    matches!(
        (interfaces.next().map(str::trim), interfaces.next()),
        (Some("lo"), None)
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockstat_counts_only_sockets_of_this_namespace() {
        let idle = "sockets: used 312\nTCP: inuse 0 orphan 2 tw 0 alloc 40 mem 9\n\
                    UDP: inuse 0 mem 4\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n";
        assert!(sockstat_is_empty(idle));
        assert!(!sockstat_is_empty(&idle.replace("tw 0", "tw 1")));
        assert!(!sockstat_is_empty(
            &idle.replace("UDP: inuse 0", "UDP: inuse 2")
        ));
        let v6 = "TCP6: inuse 1\nUDP6: inuse 0\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n";
        assert!(!sockstat_is_empty(v6));
    }

    #[test]
    fn only_lo_counts_as_loopback_only() {
        let head = "Inter-|   Receive\n face |bytes    packets\n";
        assert!(only_loopback(&format!("{head}    lo: 0 0 0\n")));
        assert!(!only_loopback(&format!(
            "{head}    lo: 0 0\n dummy0: 0 0\n"
        )));
        assert!(!only_loopback(head));
    }
}
