//! A scenario's private network, as the scenario needs it: one segment per attempt, an
//! address per member (index 0 is the driver, node `i` is `i + 1`), and the network faults.

use psy_model::LinkShape;
use psy_sandbox::net::{Attachment, RunNetwork};
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU32, Ordering};

/// Scenario networks this psy made so far (their names must differ while it lives).
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// One attempt's network; dropping it removes it.
#[derive(Debug)]
pub(super) struct ScenarioNet {
    ports: Vec<Attachment>,
    net: RunNetwork,
}

impl ScenarioNet {
    pub(super) fn create() -> Result<ScenarioNet, String> {
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let name = format!("s{:x}", (std::process::id() << 8) ^ seq)
            .chars()
            .take(psy_sandbox::net::MAX_NAME_LEN)
            .collect::<String>();
        let net = RunNetwork::create(&name).map_err(|e| format!("scenario network: {e}"))?;
        Ok(ScenarioNet {
            ports: Vec::new(),
            net,
        })
    }

    /// Joins `netns` as member `index`; its address stays while the namespace lives.
    pub(super) fn attach(&mut self, netns: impl AsFd, index: u32) -> Result<Ipv4Addr, String> {
        let port = self
            .net
            .attach(netns, index, false, None)
            .map_err(|e| format!("joining the scenario network: {e}"))?;
        let address = port.address();
        self.ports.push(port);
        Ok(address)
    }

    pub(super) fn partition(&self, _a: &[u32], _b: &[u32]) -> Result<(), String> {
        Err("partitions are not available in this build yet".into())
    }

    pub(super) fn heal(&self) -> Result<(), String> {
        Err("partitions are not available in this build yet".into())
    }

    pub(super) fn link(&self, _index: u32, _shape: Option<&LinkShape>) -> Result<(), String> {
        Err("link shaping is not available in this build yet".into())
    }
}
