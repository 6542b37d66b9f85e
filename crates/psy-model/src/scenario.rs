//! Multi-node scenarios: the nodes of a test (`[[test.node]]`) and the fault requests its
//! driver sends to the runner (`psy fault ...` over `PSY_FAULT_SOCKET`).
//!
//! A test with nodes is a *scenario*: each node is a container of its own on a private network
//! of the test, and the test's own command is the *driver*, started once every node is ready.
//! The types here are the contract between the manifest (`psy-config`), the runner that brings
//! nodes up and applies faults (`psy-runner`), and the `psy fault` client (`psy-cli`).

use crate::{Resources, SandboxRequest, VolumeSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How long a node may take to become ready unless it sets `ready-timeout`.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest node name: it is a hostname, an environment variable's part
/// (`PSY_NODE_<NAME>_ADDR`) and part of interface and log names.
pub const MAX_NODE_NAME_LEN: usize = 32;

/// The environment variable naming the fault socket inside the driver's container.
pub const FAULT_SOCKET_ENV: &str = "PSY_FAULT_SOCKET";

/// One `[[test.node]]`, resolved: `[defaults]`, then its test's settings, then its own keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// `[a-z][a-z0-9-]*`, at most [`MAX_NODE_NAME_LEN`], unique in its test: the node's
    /// hostname, resolved by name in every container of the test.
    pub name: String,
    /// argv of the node's process (resolved through `PATH` inside its container).
    pub command: Vec<String>,
    /// Working directory inside the container (absolute).
    pub cwd: PathBuf,
    /// The test's `env` overlaid with the node's own.
    pub env: BTreeMap<String, String>,
    /// Guaranteed resources of the node's container (every key a test takes).
    pub resources: Resources,
    /// The node's own volumes (`[[test.node.volume]]`), kept across its kills and restarts
    /// for the whole attempt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeSpec>,
    /// `image`, `writable`, `privileged`, ... as for a test.
    #[serde(default)]
    pub sandbox: SandboxRequest,
    /// When the node counts as up; `None`: as soon as its process started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<ReadyProbe>,
    /// How long [`NodeSpec::ready`] may take before the attempt fails.
    pub ready_timeout: Duration,
    /// `exit-fails-test = true`: the node exiting on its own (not by a fault) fails the test.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exit_fails_test: bool,
    /// Where the node was defined, for error messages (`psyduck.toml:14`).
    pub origin: String,
}

impl NodeSpec {
    /// `PSY_NODE_<NAME>_ADDR`: the name upper-cased, `-` as `_`.
    pub fn address_variable(&self) -> String {
        address_variable(&self.name)
    }
}

/// `PSY_NODE_<NAME>_ADDR` for a node named `name`.
pub fn address_variable(name: &str) -> String {
    format!(
        "PSY_NODE_{}_ADDR",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

/// `ready = { tcp = 2379 }` or `ready = { command = [...] }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadyProbe {
    /// Ready when a TCP connection to this port of the node's address succeeds.
    Tcp(u16),
    /// Ready when this command exits 0, run in the node's network namespace (so `localhost`
    /// is the node), retried until the timeout.
    Command(Vec<String>),
}

/// One `psy fault ...` call, as the driver sends it (one JSON line per connection).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum FaultRequest {
    /// SIGKILL the node's whole container; its volumes are kept.
    Kill { node: String },
    /// SIGTERM, then SIGKILL after `grace` (default 10 s).
    Stop {
        node: String,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_millis")]
        grace: Option<Duration>,
    },
    /// Start a stopped or killed node again: same address, same volumes.
    Start { node: String },
    /// Stop, then start.
    Restart {
        node: String,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_millis")]
        grace: Option<Duration>,
    },
    /// Freeze the node's cgroup.
    Pause { node: String },
    /// Thaw it.
    Resume { node: String },
    /// Drop all traffic between the two sides (nodes in neither keep their links; the driver
    /// reaches every node).
    Partition { a: Vec<String>, b: Vec<String> },
    /// Remove every partition.
    Heal,
    /// Shape the node's traffic both ways; all `None` with `clear` removes the shaping.
    Link {
        node: String,
        #[serde(default)]
        shape: LinkShape,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        clear: bool,
    },
    /// Fill the free space of the node's volume at `path` (its only volume when `None`).
    DiskFull {
        node: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf>,
    },
    /// Release what `DiskFull` took.
    DiskFree {
        node: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<PathBuf>,
    },
    /// Shift the node's clocks (`CLOCK_MONOTONIC`/`BOOTTIME` of its time namespace) by this
    /// many milliseconds.
    Clock { node: String, offset_millis: i64 },
}

impl FaultRequest {
    /// The nodes the request names, for checking them before anything is done.
    pub fn nodes(&self) -> Vec<&str> {
        use FaultRequest::*;
        match self {
            Kill { node }
            | Stop { node, .. }
            | Start { node }
            | Restart { node, .. }
            | Pause { node }
            | Resume { node }
            | Link { node, .. }
            | DiskFull { node, .. }
            | DiskFree { node, .. }
            | Clock { node, .. } => vec![node.as_str()],
            Partition { a, b } => a.iter().chain(b).map(String::as_str).collect(),
            Heal => Vec::new(),
        }
    }
}

/// `psy fault link` impairments of one node's traffic, each direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkShape {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_millis")]
    pub delay: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_millis")]
    pub jitter: Option<Duration>,
    /// Percentage of packets dropped, 0..=100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_percent: Option<f64>,
    /// Bandwidth limit in bit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_bps: Option<u64>,
}

impl LinkShape {
    /// Nothing set.
    pub fn is_empty(&self) -> bool {
        *self == LinkShape::default()
    }
}

/// The runner's answer to a [`FaultRequest`], sent when the fault is in effect (or refused).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultReply {
    /// `true`: in effect; `false`: refused or failed, `message` says why.
    pub ok: bool,
    #[serde(default)]
    pub message: String,
}

/// Durations as whole milliseconds on the wire.
mod opt_millis {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(|d| d.as_millis() as u64).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_variables_are_shell_names() {
        assert_eq!(address_variable("n1"), "PSY_NODE_N1_ADDR");
        assert_eq!(address_variable("db-primary"), "PSY_NODE_DB_PRIMARY_ADDR");
    }

    #[test]
    fn fault_requests_round_trip_as_json_lines() {
        let requests = [
            FaultRequest::Kill { node: "n1".into() },
            FaultRequest::Stop {
                node: "n2".into(),
                grace: Some(Duration::from_millis(1500)),
            },
            FaultRequest::Partition {
                a: vec!["n1".into()],
                b: vec!["n2".into(), "n3".into()],
            },
            FaultRequest::Heal,
            FaultRequest::Link {
                node: "n3".into(),
                shape: LinkShape {
                    delay: Some(Duration::from_millis(100)),
                    jitter: None,
                    loss_percent: Some(5.0),
                    rate_bps: Some(1_000_000),
                },
                clear: false,
            },
            FaultRequest::Clock {
                node: "n1".into(),
                offset_millis: -30_000,
            },
        ];
        for request in requests {
            let line = serde_json::to_string(&request).unwrap();
            assert!(!line.contains('\n'), "{line}");
            let back: FaultRequest = serde_json::from_str(&line).unwrap();
            assert_eq!(back, request, "{line}");
        }
        let heal = serde_json::to_string(&FaultRequest::Heal).unwrap();
        assert_eq!(heal, r#"{"fault":"heal"}"#);
    }

    #[test]
    fn nodes_named_by_a_partition_are_both_sides() {
        let p = FaultRequest::Partition {
            a: vec!["a".into()],
            b: vec!["b".into(), "c".into()],
        };
        assert_eq!(p.nodes(), ["a", "b", "c"]);
        assert!(FaultRequest::Heal.nodes().is_empty());
    }
}
