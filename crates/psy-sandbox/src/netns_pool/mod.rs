//! A pool of ready network namespaces, made ahead and recycled: loopback-only ones for most
//! tests, and ones already joined to the run's bridge and shaped for tests with `network`.
//!
//! Creating a network namespace and the kernel's asynchronous tear-down of it are the most
//! expensive part of starting a container (together about a quarter of the CPU of a suite of
//! trivial tests here), and joining one to a bridge with shaping takes 6-25 ms of `ip`/`tc`
//! calls. So as root a container joins a ready namespace with `setns`, and when the container
//! is gone the namespace comes back here.
//!
//! Namespaces are kept per key: `None` (loopback only) or the test's [`Shaping`]. The pool's
//! thread keeps `target` loopback-only ones ready, and a few of each shaping asked for lately.
//!
//! A namespace is only reused when nothing of its last user can reach the next one: tests run
//! without `CAP_NET_ADMIN` and with `/proc/sys` read-only (see `child.rs`), so they cannot
//! change interfaces, addresses, routes, filters, qdiscs or sysctls; the pool then checks that
//! no socket is left (not even `TIME_WAIT`, which would make the next test's `bind` fail) and
//! that its interfaces are the ones it was made with. Anything else is dropped and the kernel
//! destroys it (with its veth pair).

mod check;
mod make;

use crate::net::{Attachment, NetError, RunNetwork, Shaping};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// What a namespace was made as: loopback only (`None`) or on the bridge with this shaping.
pub(crate) type Key = Option<Shaping>;

/// Recycled namespaces kept per key beyond the made-ahead target (bursts of returns).
const MAX_READY: usize = 64;
/// Ready namespaces made ahead for each shaping asked for lately (at least; more when more
/// were lent at once).
const SHAPED_TARGET: usize = 4;
/// Shapings made ahead at most (the most recently asked for).
const MAX_SHAPINGS: usize = 4;

/// Ready namespaces waiting for containers.
#[derive(Debug)]
pub(crate) struct NetnsPool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// How many loopback-only namespaces to keep ready.
    target: usize,
    /// The host's network namespace, to come back to after making or checking one.
    host: File,
    /// The run's bridge, made when the first shaped namespace is.
    network: Mutex<Option<RunNetwork>>,
    /// The next port index on the bridge (it gives the address).
    next_port: AtomicU32,
    /// `psy<name>`: the bridge's name part (unique on the machine while psy lives).
    network_name: String,
}

#[derive(Debug, Default)]
struct State {
    ready: HashMap<Key, VecDeque<Ready>>,
    /// Given back by finished containers, not yet checked.
    returned: Vec<(Key, Ready)>,
    /// Shapings asked for, most recent last.
    wanted: Vec<Shaping>,
    /// Namespaces of each key lent out now, and the most ever lent at once: the pool keeps
    /// that many of a shaping ready, so a wave of such tests finds them made.
    lent: HashMap<Key, (usize, usize)>,
    closed: bool,
    /// Making failed once: stop trying (containers then make their own).
    failed: bool,
}

/// One ready namespace.
#[derive(Debug)]
struct Ready {
    fd: OwnedFd,
    /// Its `eth0` on the run's bridge, for shaped keys.
    attachment: Option<Attachment>,
}

impl Ready {
    fn interfaces(&self) -> &'static [&'static str] {
        if self.attachment.is_some() {
            &["lo", "eth0"]
        } else {
            &["lo"]
        }
    }

    /// Closes it, leaving the veth pair (if any) to the kernel, which deletes it with the
    /// namespace.
    fn discard(self) {
        if let Some(attachment) = self.attachment {
            attachment.release_with_namespace();
        }
    }
}

/// A namespace lent to one container: given back to the pool when dropped, which must happen
/// only after every process of the container is gone (its init reaped).
#[derive(Debug)]
pub(crate) struct NetnsLease {
    key: Key,
    ready: Option<Ready>,
    shared: Arc<Shared>,
    /// Interface counters when lent: `(sent, received)` bytes of the test's `eth0`.
    baseline: Option<(u64, u64)>,
    /// Never lent again: a privileged test could change what the clean check cannot see
    /// (its sysctls, routes, firewall).
    tainted: bool,
}

impl NetnsLease {
    /// Discards the namespace when the lease ends instead of recycling it.
    pub(crate) fn taint(&mut self) {
        self.tainted = true;
    }

    fn new(key: Key, ready: Ready, shared: Arc<Shared>) -> Self {
        let baseline = ready
            .attachment
            .as_ref()
            .and_then(|a| counters(a.host_interface()));
        NetnsLease {
            key,
            ready: Some(ready),
            shared,
            baseline,
            tainted: false,
        }
    }

    /// A second descriptor of the namespace, for the container's init to join.
    pub(crate) fn dup(&self) -> io::Result<OwnedFd> {
        self.ready.as_ref().expect("held until drop").fd.try_clone()
    }

    /// Bytes `(sent, received)` by the test on its `eth0` since it was lent; `None` for
    /// loopback-only namespaces.
    pub(crate) fn traffic(&self) -> Option<(u64, u64)> {
        let attachment = self.ready.as_ref()?.attachment.as_ref()?;
        let (sent0, received0) = self.baseline?;
        let (sent, received) = counters(attachment.host_interface())?;
        Some((
            sent.saturating_sub(sent0),
            received.saturating_sub(received0),
        ))
    }
}

/// `(sent by the test, received by the test)` from the host end of its veth pair: what the
/// host end receives, the test sent.
fn counters(host_interface: &str) -> Option<(u64, u64)> {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{host_interface}/statistics/{name}"))
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    };
    Some((read("rx_bytes")?, read("tx_bytes")?))
}

impl Drop for NetnsLease {
    fn drop(&mut self) {
        if let Some(ready) = self.ready.take() {
            let mut state = self.shared.lock();
            if let Some((now, _)) = state.lent.get_mut(&self.key) {
                *now = now.saturating_sub(1);
            }
            if state.closed || self.tainted {
                drop(state);
                ready.discard();
            } else {
                state.returned.push((self.key, ready));
                self.shared.wake.notify_one();
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new namespace for `key`, made on the calling thread.
    fn make(&self, key: Key) -> Result<Ready, MakeError> {
        let fd = make::new_netns(&self.host).map_err(MakeError::Namespace)?;
        let attachment = match key {
            None => None,
            Some(shaping) => {
                let mut network = self.network.lock().unwrap_or_else(|e| e.into_inner());
                if network.is_none() {
                    *network = Some(RunNetwork::create(&self.network_name)?);
                }
                let port = self.next_port.fetch_add(1, Ordering::Relaxed);
                let bridge = network.as_ref().expect("made above");
                Some(bridge.attach(&fd, port, true, Some(shaping))?)
            }
        };
        Ok(Ready { fd, attachment })
    }
}

/// Why a namespace could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MakeError {
    #[error("creating a network namespace: {0}")]
    Namespace(io::Error),
    #[error(transparent)]
    Network(#[from] NetError),
}

impl State {
    fn lend(&mut self, key: Key) {
        let (now, peak) = self.lent.entry(key).or_default();
        *now += 1;
        *peak = (*peak).max(*now);
    }
}

impl NetnsPool {
    /// Starts the filler thread; it keeps `target` loopback-only namespaces ready. A bridge,
    /// `psy<network_name>`, is made when the first shaped namespace is.
    pub(crate) fn start(target: usize, network_name: String) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            target,
            host: File::open("/proc/thread-self/ns/net")?,
            network: Mutex::new(None),
            next_port: AtomicU32::new(0),
            network_name,
        });
        let filler = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("psy-netns-pool".into())
            .spawn(move || fill(&filler))?;
        Ok(NetnsPool { shared })
    }

    /// A ready namespace for `key`, or `None` if none is waiting. Asking for a shaping makes
    /// the pool keep some of it ready from now on.
    pub(crate) fn take(&self, key: Key) -> Option<NetnsLease> {
        let mut state = self.shared.lock();
        if let Some(shaping) = key {
            state.wanted.retain(|w| *w != shaping);
            state.wanted.push(shaping);
            if state.wanted.len() > MAX_SHAPINGS {
                state.wanted.remove(0);
            }
        }
        let ready = state.ready.get_mut(&key).and_then(VecDeque::pop_front);
        self.shared.wake.notify_one();
        let Some(ready) = ready else {
            tracing::debug!(?key, "no network namespace ready");
            return None;
        };
        state.lend(key);
        drop(state);
        Some(NetnsLease::new(key, ready, Arc::clone(&self.shared)))
    }

    /// Starts making `at_once` namespaces with `shaping` in the background, for tests known to
    /// come (so the first of them do not make their own on the caller's thread).
    pub(crate) fn expect(&self, shaping: Shaping, at_once: usize) {
        let mut state = self.shared.lock();
        state.wanted.retain(|w| *w != shaping);
        state.wanted.push(shaping);
        if state.wanted.len() > MAX_SHAPINGS {
            state.wanted.remove(0);
        }
        let (_, peak) = state.lent.entry(Some(shaping)).or_default();
        *peak = (*peak).max(at_once.min(MAX_READY));
        self.shared.wake.notify_one();
    }

    /// A ready namespace for `key`, made now on the calling thread if none is waiting.
    pub(crate) fn take_or_make(&self, key: Key) -> Result<NetnsLease, MakeError> {
        if let Some(lease) = self.take(key) {
            return Ok(lease);
        }
        let ready = self.shared.make(key)?;
        self.shared.lock().lend(key);
        Ok(NetnsLease::new(key, ready, Arc::clone(&self.shared)))
    }

    /// Stops the pool and deletes the run's bridge. Call when every container has finished.
    pub(crate) fn close(&self) {
        let (ready, returned) = {
            let mut state = self.shared.lock();
            state.closed = true;
            self.shared.wake.notify_all();
            (
                std::mem::take(&mut state.ready),
                std::mem::take(&mut state.returned),
            )
        };
        ready.into_values().flatten().for_each(Ready::discard);
        returned.into_iter().for_each(|(_, r)| r.discard());
        let network = self
            .shared
            .network
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(network) = network {
            if let Err(e) = network.close() {
                tracing::warn!("removing the run's bridge: {e}");
            }
        }
    }
}

impl Drop for NetnsPool {
    fn drop(&mut self) {
        self.close();
    }
}

/// What the filler thread does next.
enum Work {
    Check(Vec<(Key, Ready)>),
    Create(Key),
}

fn next_work(shared: &Shared) -> Option<Work> {
    let mut state = shared.lock();
    loop {
        if state.closed {
            return None;
        }
        if !state.returned.is_empty() {
            return Some(Work::Check(std::mem::take(&mut state.returned)));
        }
        if !state.failed {
            let have = |key: &Key| state.ready.get(key).map_or(0, VecDeque::len);
            if have(&None) < shared.target {
                return Some(Work::Create(None));
            }
            // Enough that, with those lent out now, the most ever lent at once are made.
            let target = |s: &Shaping| {
                let (now, peak) = state.lent.get(&Some(*s)).copied().unwrap_or_default();
                SHAPED_TARGET.max(peak.saturating_sub(now)).min(MAX_READY)
            };
            if let Some(shaping) = state
                .wanted
                .iter()
                .rev()
                .find(|s| have(&Some(**s)) < target(s))
            {
                return Some(Work::Create(Some(*shaping)));
            }
        }
        state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
    }
}

fn fill(shared: &Shared) {
    while let Some(work) = next_work(shared) {
        match work {
            Work::Check(returned) => {
                for (key, ready) in returned {
                    let clean = check::is_pristine(&shared.host, &ready.fd, ready.interfaces())
                        .unwrap_or_else(|e| {
                            tracing::debug!("checking a used network namespace: {e}");
                            false
                        });
                    let mut state = shared.lock();
                    let closed = state.closed;
                    let queue = state.ready.entry(key).or_default();
                    if clean && queue.len() < MAX_READY && !closed {
                        queue.push_back(ready);
                    } else {
                        drop(state);
                        ready.discard();
                    }
                }
            }
            Work::Create(key) => match shared.make(key) {
                Ok(ready) => {
                    let mut state = shared.lock();
                    if state.closed {
                        drop(state);
                        ready.discard();
                    } else {
                        state.ready.entry(key).or_default().push_back(ready);
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        "making a network namespace ahead failed; containers make their own: {e}"
                    );
                    shared.lock().failed = true;
                }
            },
        }
    }
}

/// A new namespace with its loopback up, made on a short-lived thread of its own (a thread
/// that entered another network namespace must not do anything else).
pub(crate) fn fresh() -> io::Result<OwnedFd> {
    std::thread::Builder::new()
        .name("psy-netns-new".into())
        .spawn(|| -> io::Result<OwnedFd> {
            let host = File::open("/proc/thread-self/ns/net")?;
            make::new_netns(&host)
        })?
        .join()
        .map_err(|_| io::Error::other("the thread making a network namespace panicked"))?
}
