//! `POST /api/agents/register` and `GET /api/agents`: the fleet's members, their capacity and
//! labels.

use std::collections::BTreeMap;

/// What an agent says about itself when it registers.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Unique in the fleet; registering again under the same name updates the entry.
    pub name: String,
    /// CPUs this agent offers (may be fractional; precision 1/1000).
    pub cpus: f64,
    /// Memory this agent offers, in bytes.
    pub memory_bytes: u64,
    /// Labels tests may require (e.g. `arch = x86_64`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// An agent as the fleet knows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Agent {
    pub name: String,
    pub cpus: f64,
    pub memory_bytes: u64,
    pub labels: BTreeMap<String, String>,
    /// The name of the token it registered with.
    pub token: String,
    pub registered_at: String,
    pub last_seen_at: String,
    /// This registration's number: every registration under a name gets a new, larger one,
    /// and ends the previous one (its leases are given back at once). The agent names it in
    /// its claims, which are refused (409) once another registration took the name over.
    /// (`None` from a server older than schema version 6.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<i64>,
}
