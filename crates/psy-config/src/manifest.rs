//! The checked manifest: what `psyduck.toml` asks for, with paths made absolute and units
//! resolved, before discovery runs.

use psy_model::{CpuPolicy, IoCapacity, IoRequest, NetworkRequest, Resources};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The manifest's conventional file name.
pub const MANIFEST_FILE: &str = "psyduck.toml";

/// How long a discovery command may run unless its entry sets `discover-timeout`: long enough
/// for `cargo nextest list` to build a large workspace.
pub const DEFAULT_DISCOVER_TIMEOUT: Duration = Duration::from_secs(600);

/// Timeout of one attempt when neither `[defaults]`, the test nor the variant sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A parsed and validated `psyduck.toml`.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The path it was loaded from, as given (used in messages).
    pub path: PathBuf,
    /// Its directory, absolute: relative paths, globs and list commands start here.
    pub dir: PathBuf,
    pub host: HostConfig,
    /// `[report]`.
    pub report: ReportConfig,
    /// `[run]`.
    pub run: RunConfig,
    /// `[prepare]`: run by each agent once per snapshot before its tests.
    pub prepare: Option<PrepareConfig>,
    /// `[defaults]`.
    pub defaults: Settings,
    /// `[[test]]` tables, in file order.
    pub tests: Vec<TestDef>,
    /// `[[discover]]` tables, in file order.
    pub discover: Vec<DiscoverDef>,
    /// `[[variant]]` tables, in file order.
    pub variants: Vec<Variant>,
}

/// `[report]`: when `psy run` shows tests' output; unset keys leave the choice to the command
/// line and the built-in defaults (`immediate-final` for failures, `never` for successes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportConfig {
    pub failure_output: Option<psy_model::OutputDisplay>,
    pub success_output: Option<psy_model::OutputDisplay>,
}

/// `[run]`: defaults of `psy run`'s flags (a flag always wins).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunConfig {
    /// `fail-fast = true`: stop at the first failing test, as `psy run --fail-fast`.
    pub fail_fast: bool,
}

/// How long `[prepare]`'s command may run unless it sets `timeout`.
pub const DEFAULT_PREPARE_TIMEOUT: Duration = Duration::from_secs(1800);

/// `[prepare]`: a command (a build, say) that an agent runs in its copy of a submitted snapshot
/// once, before any test of that snapshot, in the manifest's directory. `psy run` ignores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareConfig {
    pub command: Vec<String>,
    /// Killed (and failed) after this long.
    pub timeout: Duration,
}

/// `[host]`: how psy uses this machine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// Milli-CPUs kept for psy itself.
    pub reserve_cpu_millis: u32,
    pub reserve_memory_bytes: u64,
    pub cpu_policy: CpuPolicy,
    /// Root filesystem for the containers instead of the host's `/` (absolute).
    pub rootfs: Option<PathBuf>,
    /// Disk IO the machine gives tests at once (`[host] io`); unset: not admitted against.
    pub io: IoCapacity,
    /// Network bandwidth the machine gives tests at once (`[host] network`); unset: not
    /// admitted against.
    pub network: NetworkRequest,
    /// `require-guarantees = true`: refuse to run when a selected test asks for a guarantee this
    /// host cannot enforce (as `psy run --require-guarantees`), instead of warning.
    pub require_guarantees: bool,
}

/// Timeout, retries and resources as set at one level (`[defaults]`, a test, a variant);
/// `None` leaves the level below in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub cpu_millis: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub pids: Option<u32>,
    pub tmp_bytes: Option<u64>,
    pub disk_bytes: Option<u64>,
    /// Disk IO throttles; merged key by key across levels.
    pub io: Option<IoRequest>,
    pub network: Option<NetworkRequest>,
    /// `privileged = true`: host root's powers (needs `psy run --allow-privileged`).
    pub privileged: Option<bool>,
    /// `allow = ["perf", "bpf"]`: calls the seccomp filter lets through.
    pub allow: Option<Vec<psy_model::Allowance>>,
    /// `writable = ["target/tmp"]`: host directories the test may write, at their own paths
    /// (absolute; relative ones were taken from the manifest's directory).
    pub writable: Option<Vec<std::path::PathBuf>>,
    /// `image = "..."` or `host = true`: the root filesystem the test runs in.
    pub image: Option<ImageChoice>,
    /// `project-path = "/src"`: where the project appears inside an image (default: its host
    /// path).
    pub project_path: Option<std::path::PathBuf>,
    /// `labels = { arch = "x86_64" }`: what a fleet agent must have to run the test (`psy
    /// submit`); merged key by key across levels. `psy run` ignores them.
    pub labels: Option<BTreeMap<String, String>>,
}

/// The root filesystem a level asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageChoice {
    /// `host = true`: the host's root, read-only (the default).
    Host,
    /// `image = "..."`: the image's (a path made absolute, or a registry reference).
    Image(String),
}

impl Settings {
    /// `self`, with every value that `top` sets replaced by `top`'s.
    pub fn overlay(&self, top: &Settings) -> Settings {
        Settings {
            timeout: top.timeout.or(self.timeout),
            retries: top.retries.or(self.retries),
            cpu_millis: top.cpu_millis.or(self.cpu_millis),
            memory_bytes: top.memory_bytes.or(self.memory_bytes),
            pids: top.pids.or(self.pids),
            tmp_bytes: top.tmp_bytes.or(self.tmp_bytes),
            disk_bytes: top.disk_bytes.or(self.disk_bytes),
            io: match (&self.io, &top.io) {
                (Some(base), Some(top)) => Some(top.over(base)),
                (base, top) => top.clone().or_else(|| base.clone()),
            },
            network: match (self.network, top.network) {
                (Some(base), Some(top)) => Some(top.over(&base)),
                (base, top) => top.or(base),
            },
            privileged: top.privileged.or(self.privileged),
            allow: top.allow.clone().or_else(|| self.allow.clone()),
            writable: top.writable.clone().or_else(|| self.writable.clone()),
            image: top.image.clone().or_else(|| self.image.clone()),
            project_path: top
                .project_path
                .clone()
                .or_else(|| self.project_path.clone()),
            labels: match (&self.labels, &top.labels) {
                (Some(base), Some(top)) => {
                    let mut merged = base.clone();
                    merged.extend(top.iter().map(|(k, v)| (k.clone(), v.clone())));
                    Some(merged)
                }
                (base, top) => top.clone().or_else(|| base.clone()),
            },
        }
    }

    /// `privileged` and `allow`, with hardening on and nothing extra allowed by default.
    pub fn sandbox(&self) -> psy_model::SandboxRequest {
        let mut allow = self.allow.clone().unwrap_or_default();
        allow.sort();
        allow.dedup();
        psy_model::SandboxRequest {
            privileged: self.privileged.unwrap_or(false),
            allow,
            writable: self.writable.clone().unwrap_or_default(),
            readonly: Vec::new(),
            image: match &self.image {
                Some(ImageChoice::Image(image)) => Some(image.clone()),
                Some(ImageChoice::Host) | None => None,
            },
            project_path: self.project_path.clone(),
        }
    }

    /// The timeout, retries and resources with built-in defaults for what is unset.
    pub fn resolve(&self) -> (Duration, u32, Resources) {
        let base = Resources::default();
        let resources = Resources {
            cpu_millis: self.cpu_millis.unwrap_or(base.cpu_millis),
            memory_bytes: self.memory_bytes.unwrap_or(base.memory_bytes),
            pids: self.pids.unwrap_or(base.pids),
            tmp_bytes: self.tmp_bytes.unwrap_or(base.tmp_bytes),
            disk_bytes: self.disk_bytes,
            io: self.io.clone(),
            network: self.network,
        };
        (
            self.timeout.unwrap_or(DEFAULT_TIMEOUT),
            self.retries.unwrap_or(0),
            resources,
        )
    }
}

/// One `[[test]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestDef {
    pub name: String,
    pub command: Vec<String>,
    /// Absolute working directory.
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
    pub settings: Settings,
    pub tags: Vec<String>,
    /// `psyduck.toml:12`.
    pub origin: String,
    pub volumes: Vec<psy_model::VolumeSpec>,
    /// `[[test.node]]`: with nodes, the test is a multi-node scenario and its command the driver.
    pub nodes: Vec<NodeDef>,
}

/// One `[[test.node]]` (or a `[[discover]]`'s node) as written: its own settings, which win
/// over its test's when the test is expanded into a [`psy_model::TestSpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeDef {
    pub name: String,
    pub command: Vec<String>,
    /// Absolute working directory; `None`: its test's.
    pub cwd: Option<PathBuf>,
    /// Overlaid on its test's (and variant's) environment.
    pub env: BTreeMap<String, String>,
    /// Its own keys; never sets `timeout`, `retries` or `labels` (those belong to the test).
    pub settings: Settings,
    pub volumes: Vec<psy_model::VolumeSpec>,
    pub ready: Option<psy_model::ReadyProbe>,
    pub ready_timeout: Duration,
    pub exit_fails_test: bool,
    /// `psyduck.toml:14`.
    pub origin: String,
}

/// One `[[discover]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoverDef {
    pub source: DiscoverSource,
    /// Run template (glob and list sources; nextest and pytest build their own).
    pub command: Option<Vec<String>>,
    /// Test-name template.
    pub name: Option<String>,
    /// Absolute working directory of the tests, if set.
    pub cwd: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub settings: Settings,
    pub tags: Vec<String>,
    /// `psyduck.toml:20 (discover glob "tests/*.sh")`.
    pub origin: String,
    /// How long its discovery command (list, nextest, pytest) may take (`discover-timeout`).
    pub discover_timeout: Duration,
    /// Nodes every discovered test gets (each becomes a multi-node scenario).
    pub nodes: Vec<NodeDef>,
}

/// Where a `[[discover]]` finds its tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoverSource {
    /// One test per file matching the pattern (relative to the manifest's directory).
    Glob(String),
    /// A command printing one test name per line.
    List(Vec<String>),
    /// `cargo nextest list`.
    Nextest(NextestOptions),
    /// `python -m pytest --collect-only`.
    Pytest(PytestOptions),
}

impl DiscoverSource {
    /// The source's key in the manifest.
    pub fn kind(&self) -> &'static str {
        match self {
            DiscoverSource::Glob(_) => "glob",
            DiscoverSource::List(_) => "list",
            DiscoverSource::Nextest(_) => "nextest",
            DiscoverSource::Pytest(_) => "pytest",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NextestOptions {
    /// Pass `--workspace`.
    pub workspace: bool,
    /// Extra arguments of `cargo nextest list`.
    pub args: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PytestOptions {
    /// Extra arguments of the collection (`tests/`, `-m "not slow"`).
    pub args: Vec<String>,
    pub per: PytestPer,
    /// The interpreter, `python3` unless set.
    pub python: String,
    /// `warm = true` (with `per = "test"` only): each test is a fork of a warm interpreter
    /// that collected the suite once (`docs/warm-starts.md`).
    pub warm: bool,
    /// `warm-fixtures = ["name"]`: fixtures set up once in the warm interpreter before forking.
    pub warm_fixtures: Vec<String>,
    /// `warm-exclude = ["glob"]`: node ids matching one of these start cold (`warm = false`
    /// for those tests).
    pub warm_exclude: Vec<glob::Pattern>,
}

/// How collected pytest items become psy tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PytestPer {
    /// One psy test per pytest node id.
    #[default]
    Test,
    /// One psy test per file: interpreter start-up dominates small Python tests.
    File,
}

/// One `[[variant]]`: every test runs once per variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub name: String,
    /// Added to (and overriding) each test's environment.
    pub env: BTreeMap<String, String>,
    /// Appended to each test's command.
    pub args: Vec<String>,
    /// Overrides applied after the test's own settings.
    pub settings: Settings,
}

/// The nearest `psyduck.toml` in `start` or one of its parents.
pub fn find_manifest(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(MANIFEST_FILE))
        .find(|candidate| candidate.is_file())
}
