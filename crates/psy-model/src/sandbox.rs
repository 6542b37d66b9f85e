//! What a test asks of its sandbox beyond resources: the opt-out from hardening and the
//! extra system calls it may make.

use serde::{Deserialize, Serialize};

/// A system call family the seccomp filter refuses unless a test asks for it (`allow = [...]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Allowance {
    /// `perf_event_open`: profilers, `perf stat`.
    Perf,
    /// `bpf`: tools that load eBPF programs.
    Bpf,
}

/// The manifest's `privileged` and `allow` keys, resolved for one test.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRequest {
    /// `privileged = true`: host root's powers (no user namespace, seccomp or own root). Runs
    /// only with `psy run --allow-privileged` and is marked in every report.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<Allowance>,
    /// Host directories the test may write, shown writable at their own paths (`writable = [...]`,
    /// absolute). Everything else of the host stays read-only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writable: Vec<std::path::PathBuf>,
    /// Host directories shown read-only at their own paths, for those a container would not
    /// see otherwise (under `/tmp`, which is private): a Rust target directory there, say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readonly: Vec<std::path::PathBuf>,
    /// `image = "..."`: the root filesystem is this image's (an absolute path, or a registry
    /// reference) instead of the host's, read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `project-path = "/src"`: where the project appears inside the image (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_path: Option<std::path::PathBuf>,
}
