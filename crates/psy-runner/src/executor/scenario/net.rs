//! A scenario's private network, as the scenario uses it: `psy_sandbox::net::ScenarioNetwork`
//! (a bridge of the attempt's own, partitions, link shaping by netem or the delay line), with
//! members numbered the scenario's way (the driver 0, node `i` at `i + 1`) and errors as the
//! driver reads them.

use psy_model::LinkShape;
use psy_sandbox::net::ScenarioNetwork;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// Scenario networks this psy made so far (their names must differ while they live).
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// One attempt's network; dropping it removes it.
#[derive(Debug)]
pub(super) struct ScenarioNet {
    net: ScenarioNetwork,
}

impl ScenarioNet {
    pub(super) fn create() -> Result<ScenarioNet, String> {
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let net = ScenarioNetwork::create(std::process::id(), seq)
            .map_err(|e| format!("scenario network: {e}"))?;
        Ok(ScenarioNet { net })
    }

    /// Joins `namespaces` as members `0..`, at once; their addresses, in order, stay while
    /// the namespaces live.
    pub(super) fn attach_all(&self, namespaces: &[OwnedFd]) -> Result<Vec<Ipv4Addr>, String> {
        let members: Vec<_> = namespaces
            .iter()
            .enumerate()
            .map(|(i, fd)| (fd.as_fd(), i as u32))
            .collect();
        self.net
            .attach_many(&members)
            .map(|ports| ports.into_iter().map(|p| p.address).collect())
            .map_err(|e| format!("joining the scenario network: {e}"))
    }

    /// Holds member `index` to a node's `network` rates (egress, ingress).
    pub(super) fn limit(&self, index: u32, rates: psy_model::NetworkRequest) -> Result<(), String> {
        let shaping = psy_sandbox::net::Shaping {
            egress_bit_per_sec: rates.egress_bps,
            ingress_bit_per_sec: rates.ingress_bps,
        };
        self.net
            .limit(index, shaping)
            .map_err(|e| format!("the node's network rates: {e}"))
    }

    pub(super) fn partition(&self, a: &[u32], b: &[u32]) -> Result<(), String> {
        self.net
            .partition(a, b)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    pub(super) fn heal(&self) -> Result<(), String> {
        self.net.heal().map(drop).map_err(|e| e.to_string())
    }

    /// Shapes member `index`'s link both ways, or clears it (`None`).
    pub(super) fn link(&self, index: u32, shape: Option<&LinkShape>) -> Result<(), String> {
        match shape {
            Some(shape) => self.net.shape(index, shape),
            None => self.net.clear_shape(index),
        }
        .map(drop)
        .map_err(|e| e.to_string())
    }

    /// How links are shaped here (`netem` or psy's delay line), for the timeline.
    pub(super) fn backend(&self) -> String {
        self.net.backend().to_string()
    }
}
