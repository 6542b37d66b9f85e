//! Joining a test's network namespace to a run's bridge, with optional tbf shaping.
//!
//! Shaping uses one tbf per direction, both on egress queues (the only place a qdisc shapes
//! rather than drops): ingress (towards the test) on the host end `pv...`, whose egress is
//! what the bridge delivers to the test; egress (from the test) on `eth0` inside the test's
//! namespace, set through `nsenter --net=/proc/<pid>/fd/<n>` since pool namespaces have no
//! name for `ip netns exec`. A container without CAP_NET_ADMIN over its namespace cannot
//! remove it. The host-only alternative (an ifb device plus a mirred redirect per test) costs
//! an extra device and two more tc calls; policing instead drops packets and makes TCP
//! rates saw-tooth well below the limit.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use super::cmd::{batch, Ns};
use super::{delete_link, NetError, RunNetwork, SUBNET};

/// Largest attachment index: the address `SUBNET + index + 2` must stay below the broadcast
/// address (`.0.1` is kept free for a future host-side gateway).
pub const MAX_INDEX: u32 = 65_532;

/// Guaranteed and limited rates of one test, in bit/s; `None` leaves a direction unshaped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Shaping {
    /// Traffic sent by the test.
    pub egress_bit_per_sec: Option<u64>,
    /// Traffic delivered to the test.
    pub ingress_bit_per_sec: Option<u64>,
}

/// A test's `eth0` on a run's bridge; dropping it deletes the veth pair.
#[derive(Debug)]
pub struct Attachment {
    host: String,
    address: Ipv4Addr,
    elapsed: Duration,
    closed: bool,
}

impl Attachment {
    /// The test's address (prefix /16).
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The host end of the veth pair, a port of the bridge.
    pub fn host_interface(&self) -> &str {
        &self.host
    }

    /// How long [`RunNetwork::attach`] took (veth, addresses and shaping).
    pub fn setup_time(&self) -> Duration {
        self.elapsed
    }

    /// Leaves the veth pair to the kernel, which deletes it with the namespace (no `ip`
    /// call: for containers whose namespace dies right after).
    pub fn release_with_namespace(mut self) {
        self.closed = true;
    }

    /// Deletes the veth pair, reporting failure (drop only logs it).
    pub fn close(mut self) -> Result<(), NetError> {
        self.closed = true;
        delete_link(&self.host)
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if !self.closed {
            // Deleting either end deletes the pair; if the namespace died first, so did the pair.
            if let Err(e) = delete_link(&self.host) {
                tracing::debug!("veth {} already gone or not deleted: {e}", self.host);
            }
        }
    }
}

impl RunNetwork {
    /// Moves a new `eth0` into `netns` (an fd of `/proc/.../ns/net` or a pool fd), addressed
    /// `SUBNET + index + 2`/16 and up, with its host end `pv<name>-<index>` on the bridge.
    /// `isolated` ports cannot reach each other; `index` must be unique within the run.
    pub fn attach(
        &self,
        netns: impl AsFd,
        index: u32,
        isolated: bool,
        shaping: Option<Shaping>,
    ) -> Result<Attachment, NetError> {
        let start = Instant::now();
        if index > MAX_INDEX {
            return Err(NetError::IndexOutOfRange {
                index,
                max: MAX_INDEX,
            });
        }
        let shaping = shaping.unwrap_or_default();
        if shaping.egress_bit_per_sec == Some(0) {
            return Err(NetError::ZeroRate {
                direction: "egress",
            });
        }
        if shaping.ingress_bit_per_sec == Some(0) {
            return Err(NetError::ZeroRate {
                direction: "ingress",
            });
        }
        let address = Ipv4Addr::from(u32::from(SUBNET) + index + 2);
        let host = format!("pv{}-{index}", self.name);
        let ns_path = format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            netns.as_fd().as_raw_fd()
        );
        let iso = if isolated { "on" } else { "off" };
        let created = batch(
            Ns::Host,
            "ip",
            &[
                format!("link add {host} type veth peer name eth0 netns {ns_path}"),
                format!("link set {host} master {}", self.bridge),
                format!("link set dev {host} type bridge_slave isolated {iso}"),
                format!("link set {host} up"),
            ],
            &format!("create veth {host} on bridge {}", self.bridge),
        );
        if let Err(e) = created {
            // A half-done batch may have left the pair; best effort, the error explains more.
            let _ = delete_link(&host);
            return Err(e);
        }
        let mut attachment = Attachment {
            host,
            address,
            elapsed: Duration::ZERO,
            closed: false,
        };
        address_eth0(&ns_path, address, &attachment.host)?;
        if let Some(rate) = shaping.ingress_bit_per_sec {
            let h = &attachment.host;
            batch(
                Ns::Host,
                "tc",
                &[tbf(h, rate)],
                &format!("shape ingress of {h}"),
            )?;
        }
        if let Some(rate) = shaping.egress_bit_per_sec {
            batch(
                Ns::At(&ns_path),
                "tc",
                &[tbf("eth0", rate)],
                &format!("shape egress of {}", attachment.host),
            )?;
        }
        attachment.elapsed = start.elapsed();
        tracing::debug!(
            host = %attachment.host, %address, ?shaping, elapsed = ?attachment.elapsed,
            "test attached to run network"
        );
        Ok(attachment)
    }
}

/// Inside the namespace at `ns_path`: `eth0` addressed `address`/16, it and `lo` up; `host`
/// (the veth's other end) names it in errors.
pub(super) fn address_eth0(ns_path: &str, address: Ipv4Addr, host: &str) -> Result<(), NetError> {
    let netns = std::fs::File::open(ns_path).map_err(|source| NetError::Device {
        what: format!("open the namespace of {host} ({ns_path})"),
        source,
    })?;
    super::ioctl::address_inside(netns.as_fd(), address, 16)
}

/// A tbf root qdisc at `rate` bit/s. The bucket holds 10 ms of traffic but at least 64 KiB,
/// so one GSO packet from a veth passes whole instead of being segmented in the qdisc.
pub(super) fn tbf(dev: &str, rate: u64) -> String {
    let burst = (rate / 8 / 100).max(64 * 1024);
    format!("qdisc add dev {dev} root tbf rate {rate}bit burst {burst} latency 50ms")
}
