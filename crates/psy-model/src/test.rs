//! A fully resolved test instance: one `[[test]]` (or discovered test) crossed with one variant.

use crate::{Resources, TestId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Everything needed to run one test id, after defaults, discovery and variants are applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestSpec {
    /// `name` or `name@variant`.
    pub id: TestId,
    /// The test's name without the variant.
    pub name: String,
    /// The variant's name, if the suite has variants.
    pub variant: Option<String>,
    /// argv; `command[0]` is resolved through `PATH` inside the container.
    pub command: Vec<String>,
    /// Working directory inside the container (absolute).
    pub cwd: PathBuf,
    /// Extra environment (on top of the inherited one and the `PSY_*` variables).
    pub env: BTreeMap<String, String>,
    /// Wall-clock limit of one attempt.
    pub timeout: Duration,
    /// How many times a failed attempt is retried.
    pub retries: u32,
    /// Guaranteed resources of one attempt.
    pub resources: Resources,
    pub tags: Vec<String>,
    /// Where the test was defined, for error messages, e.g. `psyduck.toml:12` or
    /// `psyduck.toml:20 (discover glob "tests/*.sh")`.
    pub origin: String,
    /// Persistent filesystems mounted into every attempt of this test id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeSpec>,
    /// `privileged` and `allow`: how far the sandbox's hardening applies.
    #[serde(default)]
    pub sandbox: crate::SandboxRequest,
}

/// `[[test.volume]]`: a filesystem of its own that keeps its data across the attempts (and
/// later the restarts) of one test, and is removed at the end of the run unless kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub name: String,
    pub size_bytes: u64,
    /// Where it appears inside the container (absolute; under `/tmp`, or an existing directory).
    pub path: PathBuf,
}
