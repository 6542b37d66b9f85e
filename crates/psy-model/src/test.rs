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
    /// What the test belongs to, shown as JUnit's `classname`: the test binary (nextest), the
    /// file (pytest), the discover entry, or the manifest for `[[test]]`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The test runner whose conventions the test follows (discovered tests), for the
    /// environment that runner sets and for reading the verdict from its own result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<Adapter>,
    /// `labels`: what a fleet agent must have to run it (`psy submit`); local runs ignore them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `[[test.node]]`: the nodes of a multi-node scenario. With nodes, `command` is the
    /// driver, started on the test's private network once every node is ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<crate::NodeSpec>,
    /// `warm = true` on a pytest discovery: started as a fork of a warm interpreter that has
    /// collected the suite once (`docs/warm-starts.md`). `command` stays the cold command,
    /// the fallback when a warm start is not possible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<WarmStart>,
}

/// How a warm test is started: the warm interpreter it forks from and the item it runs.
/// Tests whose [`WarmStart::parent`] and environment are equal share one interpreter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WarmStart {
    /// The interpreter that collects once and forks (the discovery's `python`).
    pub python: String,
    /// pytest's collection arguments (the discovery's `args`).
    pub args: Vec<String>,
    /// Where pytest collects and every child starts (the manifest's directory).
    pub dir: PathBuf,
    /// The pytest node id this test runs.
    pub item: String,
    /// `warm-fixtures`: fixtures set up once in the interpreter before it forks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixtures: Vec<String>,
}

impl WarmStart {
    /// What identifies the interpreter: everything but the item.
    pub fn parent(&self) -> (&str, &[String], &std::path::Path, &[String]) {
        (&self.python, &self.args, &self.dir, &self.fixtures)
    }
}

impl TestSpec {
    /// What one attempt takes from the machine at once: its own resources plus every node's
    /// (a scenario is admitted only when its driver and all its nodes fit together).
    pub fn footprint(&self) -> Resources {
        let mut total = self.resources.clone();
        for node in &self.nodes {
            total.add(&node.resources);
        }
        total
    }

    /// `true` for a multi-node scenario.
    pub fn is_scenario(&self) -> bool {
        !self.nodes.is_empty()
    }

    /// `node` of this scenario as a test of its own (id `<test>.node.<name>`): what its
    /// containers are made from, and what checks of a test's sandbox look at.
    pub fn node_as_test(&self, node: &crate::NodeSpec) -> TestSpec {
        TestSpec {
            id: crate::TestId(format!("{}.node.{}", self.id, node.name)),
            name: node.name.clone(),
            variant: self.variant.clone(),
            command: node.command.clone(),
            cwd: node.cwd.clone(),
            env: node.env.clone(),
            timeout: self.timeout,
            retries: 0,
            resources: node.resources.clone(),
            tags: Vec::new(),
            origin: node.origin.clone(),
            volumes: node.volumes.clone(),
            sandbox: node.sandbox.clone(),
            group: None,
            adapter: None,
            labels: BTreeMap::new(),
            nodes: Vec::new(),
            warm: None,
        }
    }
}

/// `tests` with every scenario's nodes as tests of their own after it (borrowed as they are
/// when there is no scenario): for the checks that look at each container's sandbox.
pub fn with_nodes_as_tests(tests: &[TestSpec]) -> std::borrow::Cow<'_, [TestSpec]> {
    if !tests.iter().any(TestSpec::is_scenario) {
        return std::borrow::Cow::Borrowed(tests);
    }
    let mut all = Vec::with_capacity(tests.len());
    for test in tests {
        all.push(test.clone());
        all.extend(test.nodes.iter().map(|n| test.node_as_test(n)));
    }
    std::borrow::Cow::Owned(all)
}

/// The native test runner behind a discovered test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Adapter {
    /// A libtest binary, run as nextest runs it: nextest's per-attempt environment, and
    /// libtest's `test NAME ... ignored` line makes the attempt `skipped`.
    Nextest,
    /// pytest, writing its JUnit XML to [`RESULT_FILE`] (replaced in the command by the
    /// attempt's result file): its verdict tells `skipped`; exit status 5 means it ran no test.
    Pytest,
}

/// The placeholder an adapter's command uses for the file its runner writes the result to; the
/// runner replaces it with a path in the attempt's scratch directory.
pub const RESULT_FILE: &str = "{psy-result-file}";

/// `[[test.volume]]`: a filesystem of its own that keeps its data across the attempts (and
/// later the restarts) of one test, and is removed at the end of the run unless kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub name: String,
    pub size_bytes: u64,
    /// Where it appears inside the container (absolute; it need not exist on the host).
    pub path: PathBuf,
}
