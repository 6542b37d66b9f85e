//! A multi-node scenario's private network: one bridge per scenario attempt, a veth port per
//! node and one for the driver, partitions as nftables rules, link shaping by netem or psy's
//! delay line.
//!
//! Containment is the run network's (see the module docs of `net`): no uplink, no host
//! address, the host's stack deaf on the bridge and on every veth host end (which may leave the
//! bridge while its node is shaped by the delay line). Ports are not isolated: the nodes and
//! the driver of one scenario share one L2 segment; two scenarios share nothing. A port's
//! address follows from its index alone, and its veth lives as long as the namespace fd given
//! to [`ScenarioNetwork::attach`] (duplicated and kept here), so a node restarted in the same
//! namespace keeps its address.
//!
//! Each fault is one subprocess at most: `partition` and `heal` one `nft -f -` transaction,
//! delay-line `shape` and `clear_shape` one `ip -batch` (changing an existing shape none),
//! netem ones a `tc -batch` per end, run at once. Every fault call returns how long it took.
//!
//! With netem, the qdisc from the node sits on `eth0` inside its namespace: a node holding
//! `CAP_NET_ADMIN` there could remove it (as with run networks' egress tbf). The delay line
//! leaves nothing inside the namespace.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use psy_model::scenario::LinkShape;

use super::attach::address_eth0;
use super::cmd::{batch, nft, Ns};
use super::delay_line::{DelayLine, LineIo};
use super::impairment::{ImpairmentBackend, OneWay};
use super::scenario_names::{table_owner, ScenarioNames, MAX_SCENARIO_INDEX};
use super::{contain, delete_link, new_bridge, partition, NetError, SUBNET};

/// One scenario attempt's network; dropping it (or [`ScenarioNetwork::close`]) removes the
/// bridge, veths, taps, qdiscs, the nftables table and the delay-line threads.
#[derive(Debug)]
pub struct ScenarioNetwork {
    names: ScenarioNames,
    bridge: String,
    backend: ImpairmentBackend,
    ports: Mutex<BTreeMap<u32, Port>>,
    closed: bool,
}

/// A port made by [`ScenarioNetwork::attach`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioPort {
    /// The index it was attached under.
    pub index: u32,
    /// `eth0`'s address inside the namespace (prefix /16).
    pub address: Ipv4Addr,
    /// The veth's host end.
    pub host_interface: String,
    /// How long attaching took.
    pub setup_time: Duration,
}

#[derive(Debug)]
struct Port {
    /// Keeps the namespace (and so the veth) alive, and reaches `eth0` for netem.
    netns: OwnedFd,
    veth: String,
    /// The delay line's tap and socket, made on the first shape and kept until the port goes.
    line_io: Option<Arc<LineIo>>,
    shaped: Option<Shaped>,
}

#[derive(Debug)]
enum Shaped {
    Netem,
    DelayLine(DelayLine),
}

impl ScenarioNetwork {
    /// A new scenario network of psy process `owner_pid` (named after it, so `gc_stale`
    /// finds it once that psy is dead), its `seq`-th; shaping uses
    /// [`ImpairmentBackend::detect`].
    pub fn create(owner_pid: u32, seq: u32) -> Result<ScenarioNetwork, NetError> {
        ScenarioNetwork::create_with_backend(owner_pid, seq, ImpairmentBackend::detect())
    }

    /// As [`ScenarioNetwork::create`], shaping with `backend` (netem fails where the kernel
    /// has none).
    pub fn create_with_backend(
        owner_pid: u32,
        seq: u32,
        backend: ImpairmentBackend,
    ) -> Result<ScenarioNetwork, NetError> {
        let names =
            ScenarioNames::new(owner_pid, seq).ok_or(NetError::BadOwner { pid: owner_pid })?;
        let bridge = names.bridge();
        new_bridge(&bridge)?;
        // From here on, dropping `net` removes what exists.
        let net = ScenarioNetwork {
            bridge,
            backend,
            ports: Mutex::new(BTreeMap::new()),
            closed: false,
            names,
        };
        nft(
            &partition::create(&net.names.table()),
            &format!("create the partition table of {}", net.bridge),
        )?;
        tracing::debug!(bridge = %net.bridge, ?backend, "scenario network created");
        Ok(net)
    }

    /// The bridge's interface name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// How this network shapes links.
    pub fn backend(&self) -> ImpairmentBackend {
        self.backend
    }

    /// The address of port `index`: `SUBNET + index + 2`, the same on every scenario network.
    pub fn address(&self, index: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(SUBNET) + index + 2)
    }

    /// Moves a new `eth0` into `netns` (an fd of `/proc/.../ns/net` or a pool fd), addressed
    /// [`ScenarioNetwork::address`]/16 and up, its host end on the bridge. `index` is at most
    /// [`MAX_SCENARIO_INDEX`] and unique in this network.
    pub fn attach(&self, netns: impl AsFd, index: u32) -> Result<ScenarioPort, NetError> {
        let mut ports = self.attach_many(&[(netns.as_fd(), index)])?;
        Ok(ports.remove(0))
    }

    /// [`ScenarioNetwork::attach`] for several namespaces at once: their veth pairs are made by
    /// one `ip` process (the only subprocess; the rest is ioctls), so a scenario's members
    /// cost one process, not one each. All or nothing: on failure none is attached.
    pub fn attach_many(
        &self,
        members: &[(BorrowedFd<'_>, u32)],
    ) -> Result<Vec<ScenarioPort>, NetError> {
        let start = Instant::now();
        let mut ports = self.ports();
        let mut seen = Vec::with_capacity(members.len());
        for &(_, index) in members {
            if index > MAX_SCENARIO_INDEX {
                return Err(NetError::IndexOutOfRange {
                    index,
                    max: MAX_SCENARIO_INDEX,
                });
            }
            if ports.contains_key(&index) || seen.contains(&index) {
                return Err(self.port_error(index, "is already attached"));
            }
            seen.push(index);
        }
        let mut made = Vec::with_capacity(members.len());
        for &(netns, index) in members {
            let netns = netns
                .try_clone_to_owned()
                .map_err(|source| NetError::Device {
                    what: format!("keep the namespace of port {index} of {}", self.bridge),
                    source,
                })?;
            made.push((index, self.names.veth(index), netns));
        }
        let lines: Vec<String> = made
            .iter()
            .map(|(_, veth, netns)| {
                let ns = ns_path(netns);
                format!("link add {veth} type veth peer name eth0 netns {ns}")
            })
            .collect();
        let veths: Vec<&str> = made.iter().map(|(_, veth, _)| veth.as_str()).collect();
        let delete_all = || {
            for veth in &veths {
                let _ = delete_link(veth);
            }
        };
        if let Err(e) = batch(
            Ns::Host,
            "ip",
            &lines,
            &format!("create veths {} for {}", veths.join(" "), self.bridge),
        ) {
            // A half-done batch may have made some; the error explains more.
            delete_all();
            return Err(e);
        }
        let configured = made.iter().try_for_each(|(index, veth, netns)| {
            contain(veth)
                .and_then(|()| super::ioctl::enslave_up(&self.bridge, veth))
                .and_then(|()| address_eth0(&ns_path(netns), self.address(*index), veth))
        });
        if let Err(e) = configured {
            delete_all();
            return Err(e);
        }
        let setup_time = start.elapsed();
        let mut attached = Vec::with_capacity(made.len());
        for (index, veth, netns) in made {
            let address = self.address(index);
            tracing::debug!(%veth, %address, ?setup_time, "attached to scenario network");
            attached.push(ScenarioPort {
                index,
                address,
                host_interface: veth.clone(),
                setup_time,
            });
            ports.insert(
                index,
                Port {
                    netns,
                    veth,
                    line_io: None,
                    shaped: None,
                },
            );
        }
        Ok(attached)
    }

    /// Drops all traffic between the ports of `a` and those of `b`, both ways, on top of
    /// earlier partitions; ports in neither side (the driver's) keep every link. In effect
    /// when it returns; returns how long it took.
    pub fn partition(&self, a: &[u32], b: &[u32]) -> Result<Duration, NetError> {
        let start = Instant::now();
        let bad = |why| NetError::BadPartition {
            bridge: self.bridge.clone(),
            a: a.to_vec(),
            b: b.to_vec(),
            why,
        };
        if a.is_empty() || b.is_empty() {
            return Err(bad("a side is empty"));
        }
        if a.iter().any(|i| b.contains(i)) {
            return Err(bad("a port is on both sides"));
        }
        let ports = self.ports();
        let side = |indices: &[u32]| -> Result<Vec<String>, NetError> {
            let mut names = Vec::new();
            for &index in indices {
                if !ports.contains_key(&index) {
                    return Err(self.port_error(index, "is not attached"));
                }
                names.extend([self.names.veth(index), self.names.tap(index)]);
            }
            Ok(names)
        };
        let (a_ports, b_ports) = (side(a)?, side(b)?);
        nft(
            &partition::cut(&self.names.table(), &a_ports, &b_ports),
            &format!("partition {a:?} from {b:?} on {}", self.bridge),
        )?;
        Ok(self.took(start, "partition"))
    }

    /// Removes every partition; returns how long it took.
    pub fn heal(&self) -> Result<Duration, NetError> {
        let start = Instant::now();
        nft(
            &partition::heal(&self.names.table()),
            &format!("heal the partitions of {}", self.bridge),
        )?;
        Ok(self.took(start, "heal"))
    }

    /// Delays, drops and paces port `index`'s traffic both ways as `shape` says (replacing
    /// an earlier shape; an empty shape clears it); returns how long it took.
    pub fn shape(&self, index: u32, shape: &LinkShape) -> Result<Duration, NetError> {
        if shape.is_empty() {
            return self.clear_shape(index);
        }
        let start = Instant::now();
        let way = OneWay::of(index, shape)?;
        let mut ports = self.ports();
        let port = ports
            .get_mut(&index)
            .ok_or_else(|| self.port_error(index, "is not attached"))?;
        match (self.backend, &port.shaped) {
            (_, Some(Shaped::DelayLine(line))) => line.set(way),
            (ImpairmentBackend::Netem, _) => {
                netem(port, &[way.netem(&port.veth)], &[way.netem("eth0")])?;
                port.shaped = Some(Shaped::Netem);
            }
            (ImpairmentBackend::DelayLine, _) => {
                let tap = self.names.tap(index);
                let io = match &port.line_io {
                    Some(io) => Arc::clone(io),
                    None => {
                        let io = Arc::new(LineIo::open(&tap, &port.veth)?);
                        contain(&tap)?;
                        port.line_io = Some(Arc::clone(&io));
                        io
                    }
                };
                let line = DelayLine::start(&port.veth, io, way)?;
                let veth = &port.veth;
                let swapped = batch(
                    Ns::Host,
                    "ip",
                    &[
                        format!("link set {veth} nomaster"),
                        format!("link set {tap} master {}", self.bridge),
                        format!("link set {tap} up"),
                    ],
                    &format!("put the delay line {tap} in place of {veth}"),
                );
                if let Err(e) = swapped.and_then(|()| line.open()) {
                    drop(line);
                    let _ = self.swap_back(veth, &tap);
                    return Err(e);
                }
                port.shaped = Some(Shaped::DelayLine(line));
            }
        }
        Ok(self.took(start, "shape"))
    }

    /// Removes port `index`'s shaping (nothing if unshaped); returns how long it took.
    pub fn clear_shape(&self, index: u32) -> Result<Duration, NetError> {
        let start = Instant::now();
        let mut ports = self.ports();
        let port = ports
            .get_mut(&index)
            .ok_or_else(|| self.port_error(index, "is not attached"))?;
        match port.shaped.take() {
            None => {}
            Some(Shaped::Netem) => {
                let del = |dev: &str| format!("qdisc del dev {dev} root");
                netem(port, &[del(&port.veth)], &[del("eth0")])?;
            }
            Some(Shaped::DelayLine(line)) => {
                drop(line);
                self.swap_back(&port.veth, &self.names.tap(index))?;
            }
        }
        Ok(self.took(start, "clear shape"))
    }

    /// Holds port `index` to `limits` (a node's `network = { egress, ingress }`): a tbf on
    /// each end, as a run network's test gets. `psy fault link` on a netem host replaces them
    /// while it shapes the port (netem takes the root qdisc); the delay line keeps them.
    pub fn limit(&self, index: u32, limits: super::Shaping) -> Result<(), NetError> {
        let ports = self.ports();
        let port = ports
            .get(&index)
            .ok_or_else(|| self.port_error(index, "is not attached"))?;
        let host: Vec<String> = limits
            .ingress_bit_per_sec
            .map(|rate| super::attach::tbf(&port.veth, rate))
            .into_iter()
            .collect();
        let inside: Vec<String> = limits
            .egress_bit_per_sec
            .map(|rate| super::attach::tbf("eth0", rate))
            .into_iter()
            .collect();
        let what = format!("limit the rates of {}", port.veth);
        if !host.is_empty() {
            batch(Ns::Host, "tc", &host, &what)?;
        }
        if !inside.is_empty() {
            batch(Ns::At(&ns_path(&port.netns)), "tc", &inside, &what)?;
        }
        Ok(())
    }

    /// Deletes port `index`'s veth (and delay line) before the network goes.
    pub fn detach(&self, index: u32) -> Result<(), NetError> {
        let port = self
            .ports()
            .remove(&index)
            .ok_or_else(|| self.port_error(index, "is not attached"))?;
        drop((port.shaped, port.line_io));
        delete_link(&port.veth)
    }

    /// Removes everything, reporting the first failure (drop only logs them).
    pub fn close(mut self) -> Result<(), NetError> {
        self.closed = true;
        self.teardown()
    }

    /// Delay lines and taps first, then the table (it must not outlive the bridge, see
    /// `gc_stale`), then veths and bridge in one batch, then the namespace fds.
    fn teardown(&self) -> Result<(), NetError> {
        let mut ports = std::mem::take(&mut *self.ports());
        let mut links: Vec<String> = Vec::new();
        for port in ports.values_mut() {
            drop((port.shaped.take(), port.line_io.take()));
            links.push(port.veth.clone());
        }
        let table = nft(
            &partition::delete(&self.names.table()),
            &format!("delete the partition table of {}", self.bridge),
        );
        links.push(self.bridge.clone());
        // A port whose namespace died took its veth along; deleting it would fail the batch.
        let lines: Vec<String> = links
            .iter()
            .filter(|l| Path::new("/sys/class/net").join(l).exists())
            .map(|l| format!("link del {l}"))
            .collect();
        let deleted = if lines.is_empty() {
            Ok(())
        } else {
            batch(Ns::Host, "ip", &lines, &format!("delete {}", self.bridge))
        };
        // Only now: the last fd of a namespace makes the kernel delete its veth in the
        // background, which would race the batch above (and stop it before the bridge).
        drop(ports);
        tracing::debug!(bridge = %self.bridge, "scenario network removed");
        table.and(deleted)
    }

    /// Puts `veth` back on the bridge in place of the idle `tap`.
    fn swap_back(&self, veth: &str, tap: &str) -> Result<(), NetError> {
        batch(
            Ns::Host,
            "ip",
            &[
                format!("link set {tap} nomaster"),
                format!("link set {veth} master {}", self.bridge),
            ],
            &format!("put {veth} back on {} in place of {tap}", self.bridge),
        )
    }

    fn ports(&self) -> MutexGuard<'_, BTreeMap<u32, Port>> {
        self.ports.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn port_error(&self, index: u32, why: &'static str) -> NetError {
        NetError::Port {
            bridge: self.bridge.clone(),
            index,
            why,
        }
    }

    fn took(&self, start: Instant, fault: &str) -> Duration {
        let took = start.elapsed();
        tracing::debug!(bridge = %self.bridge, fault, ?took, "scenario fault in effect");
        took
    }
}

impl Drop for ScenarioNetwork {
    fn drop(&mut self) {
        if !self.closed {
            if let Err(e) = self.teardown() {
                tracing::warn!("scenario network {} not fully removed: {e}", self.bridge);
            }
        }
    }
}

/// `/proc/<pid>/fd/<n>` for a namespace fd of this process.
fn ns_path(netns: &OwnedFd) -> String {
    format!("/proc/{}/fd/{}", std::process::id(), netns.as_raw_fd())
}

/// Runs `host` lines with `tc` on the host and `inside` lines in the port's namespace, both
/// at once (two processes, one process's time).
fn netem(port: &Port, host: &[String], inside: &[String]) -> Result<(), NetError> {
    let what = format!("change the netem qdiscs of {}", port.veth);
    let ns = ns_path(&port.netns);
    let (on_host, in_ns) = std::thread::scope(|s| {
        let on_host = s.spawn(|| batch(Ns::Host, "tc", host, &what));
        let in_ns = batch(Ns::At(&ns), "tc", inside, &what);
        (on_host.join(), in_ns)
    });
    match on_host {
        Ok(result) => result.and(in_ns),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Deletes the scenario tables of dead owners; returns how many.
pub(super) fn gc_stale_tables(alive: &impl Fn(u32) -> bool) -> usize {
    let listed = std::process::Command::new("nft")
        .args(["list", "tables", "bridge"])
        .output();
    let out = match listed {
        Ok(out) if out.status.success() => out.stdout,
        Ok(out) => {
            tracing::debug!(
                "nft list tables failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return 0;
        }
        Err(e) => {
            tracing::debug!("cannot run nft to list tables: {e}");
            return 0;
        }
    };
    let mut deleted = 0;
    for line in String::from_utf8_lossy(&out).lines() {
        let Some(table) = line.trim().strip_prefix("table bridge ") else {
            continue;
        };
        if table_owner(table).is_some_and(|pid| !alive(pid)) {
            match nft(
                &partition::delete(table),
                &format!("delete stale table {table}"),
            ) {
                Ok(()) => deleted += 1,
                Err(e) => tracing::debug!("stale table {table} not deleted: {e}"),
            }
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_network_can_be_shared_by_the_runner_s_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<ScenarioNetwork>();
    }

    #[test]
    fn addresses_follow_from_the_index_alone() {
        let a = ScenarioNames::new(1, 1).unwrap();
        let net = ScenarioNetwork {
            bridge: a.bridge(),
            names: a,
            backend: ImpairmentBackend::DelayLine,
            ports: Mutex::new(BTreeMap::new()),
            // Never created: nothing to remove.
            closed: true,
        };
        assert_eq!(net.address(0), Ipv4Addr::new(10, 213, 0, 2));
        assert_eq!(net.address(255), Ipv4Addr::new(10, 213, 1, 1));
    }
}
