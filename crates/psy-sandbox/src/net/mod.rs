//! Per-run network segments: a bridge with no uplink, veth pairs into test namespaces, tc shaping.
//!
//! The building block for `network = { egress = "...", ingress = "..." }`: each run gets one
//! Linux bridge, each test namespace is joined to it by a veth pair (`eth0` inside), gets an
//! address of [`SUBNET`] and optionally token-bucket (tbf) shaping in each direction.
//!
//! Containment is by construction, not by firewall rules:
//! - the bridge has no uplink, no NAT and no host address, and nothing here touches
//!   `ip_forward`, so packets cannot leave the segment for other interfaces;
//! - the host's own stack does not answer on the bridge: IPv6 is disabled on it (no link-local
//!   address), IPv4 `rp_filter` is strict (no route points at the bridge, so every packet
//!   arriving from it fails the reverse-path check) and `arp_ignore = 8` (never answer ARP);
//! - an `isolated` port can talk to no other isolated port; non-isolated ports share a plain
//!   L2 segment and, as the kernel defines isolation, can also reach isolated ports of the
//!   same bridge: multi-node scenarios get a [`ScenarioNetwork`] each (a bridge of their own,
//!   with partitions and link shaping) rather than sharing a run's. Bridges are unconnected to
//!   each other, so every one can reuse the same [`SUBNET`].

mod attach;
mod cmd;
mod delay_line;
mod delay_line_io;
mod error;
mod impairment;
mod ioctl;
mod partition;
mod scenario;
mod scenario_names;

use std::net::Ipv4Addr;

pub use attach::{Attachment, Shaping, MAX_INDEX};
pub use error::NetError;
pub use impairment::{ImpairmentBackend, FORCE_DELAY_LINE_ENV};
pub use scenario::{ScenarioNetwork, ScenarioPort};
pub use scenario_names::MAX_SCENARIO_INDEX;

use cmd::{ip, sysctl};

/// The /16 every run's segment uses; private, and never routed by the host.
pub const SUBNET: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 0);

/// Longest run name: `pv<name>-<index>` must fit the kernel's 15-byte interface names.
pub const MAX_NAME_LEN: usize = 7;

/// One run's bridge; dropping it deletes the bridge.
#[derive(Debug)]
pub struct RunNetwork {
    name: String,
    bridge: String,
    closed: bool,
}

impl RunNetwork {
    /// Creates the bridge `psy<name>`, up, unreachable from its ports (see the module docs).
    /// `name` is 1..=[`MAX_NAME_LEN`] characters of `[a-z0-9]` and unique on the machine.
    pub fn create(name: &str) -> Result<RunNetwork, NetError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(NetError::InvalidName {
                name: name.to_owned(),
                max: MAX_NAME_LEN,
            });
        }
        let bridge = format!("psy{name}");
        new_bridge(&bridge)?;
        tracing::debug!(%bridge, "run network created");
        Ok(RunNetwork {
            name: name.to_owned(),
            bridge,
            closed: false,
        })
    }

    /// The bridge's interface name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The run name given to [`RunNetwork::create`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the bridge, reporting failure (drop only logs it). Attachments still alive
    /// lose their segment; delete them first.
    pub fn close(mut self) -> Result<(), NetError> {
        self.closed = true;
        delete_link(&self.bridge)
    }
}

impl Drop for RunNetwork {
    fn drop(&mut self) {
        if !self.closed {
            if let Err(e) = delete_link(&self.bridge) {
                tracing::warn!("leaving bridge {} behind: {e}", self.bridge);
            }
        }
    }
}

/// Deletes the network devices of psy processes that are gone (a SIGKILLed psy cannot delete
/// its own): run bridges (`psy<pid in hex>`) and veths (`pv<pid in hex>-<n>`), scenario
/// bridges, veths and taps (`ps<pid in hex>...`) and, if a scenario bridge was among them,
/// the scenario nftables tables of dead owners (a table never outlives its bridge: it is made
/// after it and deleted before it). Returns how many were deleted. `alive(pid)` says whether
/// a psy with that pid still runs.
pub fn gc_stale(alive: impl Fn(u32) -> bool) -> usize {
    let Ok(links) = std::fs::read_dir("/sys/class/net") else {
        return 0;
    };
    let mut deleted = 0;
    let mut scenario_seen = false;
    for link in links.flatten() {
        let name = link.file_name().to_string_lossy().into_owned();
        let scenario = scenario_names::link_owner(&name);
        let owner = name
            .strip_prefix("psy")
            .or_else(|| {
                name.strip_prefix("pv")
                    .and_then(|rest| rest.split('-').next())
            })
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .or(scenario);
        if owner.is_some_and(|pid| !alive(pid)) {
            scenario_seen |= scenario.is_some();
            match delete_link(&name) {
                Ok(()) => deleted += 1,
                Err(e) => tracing::debug!("stale link {name} not deleted (already gone?): {e}"),
            }
        }
    }
    if scenario_seen {
        deleted += scenario::gc_stale_tables(&alive);
    }
    deleted
}

/// Creates `bridge`, no STP, up, unreachable from its ports (see the module docs); deletes it
/// again if a later step fails.
fn new_bridge(bridge: &str) -> Result<(), NetError> {
    ip(
        format!("link add name {bridge} type bridge stp_state 0"),
        &format!("create bridge {bridge}"),
    )?;
    let configured = contain(bridge).and_then(|()| ioctl::link_up(bridge));
    if configured.is_err() {
        let _ = delete_link(bridge);
    }
    configured
}

/// Keeps the host's own stack off interface `dev`; call before it is up, so it never gets an
/// IPv6 link-local address.
fn contain(dev: &str) -> Result<(), NetError> {
    sysctl(format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"), "1")?;
    sysctl(format!("/proc/sys/net/ipv4/conf/{dev}/rp_filter"), "1")?;
    sysctl(format!("/proc/sys/net/ipv4/conf/{dev}/arp_ignore"), "8")
}

/// `ip link del <name>`.
fn delete_link(name: &str) -> Result<(), NetError> {
    ip(format!("link del {name}"), &format!("delete {name}"))
}
