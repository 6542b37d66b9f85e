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
//!   L2 segment (the future multi-node scenario) and, as the kernel defines isolation, can
//!   also reach isolated ports of the same bridge: give each scenario its own [`RunNetwork`]
//!   rather than mixing it with isolated tests. Bridges are unconnected to each other, so
//!   every one can reuse the same [`SUBNET`].

mod attach;
mod cmd;
mod error;

use std::net::Ipv4Addr;

pub use attach::{Attachment, Shaping, MAX_INDEX};
pub use error::NetError;

use cmd::{batch, sysctl, Ns};

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
        batch(
            Ns::Host,
            "ip",
            &[format!("link add name {bridge} type bridge stp_state 0")],
            &format!("create bridge {bridge}"),
        )?;
        // From here on, dropping `net` deletes the bridge if a later step fails.
        let net = RunNetwork {
            name: name.to_owned(),
            bridge,
            closed: false,
        };
        // Before `up`, so the bridge never gets an IPv6 link-local address.
        let b = &net.bridge;
        sysctl(format!("/proc/sys/net/ipv6/conf/{b}/disable_ipv6"), "1")?;
        sysctl(format!("/proc/sys/net/ipv4/conf/{b}/rp_filter"), "1")?;
        sysctl(format!("/proc/sys/net/ipv4/conf/{b}/arp_ignore"), "8")?;
        batch(
            Ns::Host,
            "ip",
            &[format!("link set {b} up")],
            &format!("bring bridge {b} up"),
        )?;
        tracing::debug!(bridge = %net.bridge, "run network created");
        Ok(net)
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

/// Deletes the bridges (`psy<pid in hex>`) and veths (`pv<pid in hex>-<n>`) of psy processes
/// that are gone (a SIGKILLed psy cannot delete its own); returns how many were deleted.
/// `alive(pid)` says whether a psy with that pid still runs.
pub fn gc_stale(alive: impl Fn(u32) -> bool) -> usize {
    let Ok(links) = std::fs::read_dir("/sys/class/net") else {
        return 0;
    };
    let mut deleted = 0;
    for link in links.flatten() {
        let name = link.file_name().to_string_lossy().into_owned();
        let owner = name
            .strip_prefix("psy")
            .or_else(|| {
                name.strip_prefix("pv")
                    .and_then(|rest| rest.split('-').next())
            })
            .and_then(|hex| u32::from_str_radix(hex, 16).ok());
        if owner.is_some_and(|pid| !alive(pid)) {
            match delete_link(&name) {
                Ok(()) => deleted += 1,
                Err(e) => tracing::debug!("stale link {name} not deleted (already gone?): {e}"),
            }
        }
    }
    deleted
}

/// `ip link del <name>`.
fn delete_link(name: &str) -> Result<(), NetError> {
    batch(
        Ns::Host,
        "ip",
        &[format!("link del {name}")],
        &format!("delete {name}"),
    )
}
