//! A scenario's nodes: each a container of its own, started (and restarted) in the network
//! namespace the scenario keeps for it, so its address and its volumes outlive its processes.

use crate::executor::{AttemptRequest, ContainerExecutor};
use psy_model::{LogStream, NodeSpec, RunId, TestId, TestSpec};
use psy_sandbox::cgroup::CgroupLimits;
use psy_sandbox::timens::ClockOffset;
use psy_sandbox::{Container, ContainerSpec};
use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// One node of a running scenario.
#[derive(Debug)]
pub(super) struct Node {
    pub(super) spec: NodeSpec,
    /// Its network namespace, attached to the scenario's network once.
    pub(super) netns: OwnedFd,
    pub(super) address: Ipv4Addr,
    /// Its container while it runs.
    pub(super) container: Option<Container>,
    /// How many times it was started (names its cgroups apart).
    pub(super) starts: u32,
    /// The test spec its containers are made from (its name, resources, volumes, image).
    pub(super) as_test: TestSpec,
    /// What its volumes are kept under (`<record_as>.node.<name>`).
    pub(super) record_as: TestId,
    /// Its scratch directory (`$PSY_SCRATCH`), for the whole attempt.
    pub(super) scratch: PathBuf,
    /// Where its output goes (appended across restarts).
    pub(super) stdout: PathBuf,
    pub(super) stderr: PathBuf,
    /// The running container's writable image layer, removed when it ends.
    pub(super) layer: Option<PathBuf>,
    /// Its clocks' offset in milliseconds (`psy fault clock`), kept across its restarts until
    /// the next `clock` fault; 0: the host's clocks.
    pub(super) clock_offset_millis: i64,
}

impl Node {
    /// Everything but the running container; `index` is its position in the test (0-based).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        spec: NodeSpec,
        test: &TestSpec,
        record_as: &TestId,
        netns: OwnedFd,
        address: Ipv4Addr,
        scratch_root: &Path,
        stdout_path: &Path,
    ) -> Result<Node, String> {
        let as_test = test.node_as_test(&spec);
        let scratch = scratch_root.join(&spec.name);
        std::fs::create_dir_all(&scratch).map_err(|e| {
            format!(
                "node {} of {}: creating {}: {e}",
                spec.name,
                test.id,
                scratch.display()
            )
        })?;
        let log = |stream: LogStream| {
            let ext = match stream {
                LogStream::Stdout => "out",
                LogStream::Stderr => "err",
            };
            crate::layout::scenario_file(stdout_path, &format!("node.{}.{ext}", spec.name))
        };
        Ok(Node {
            record_as: TestId(format!("{}.node.{}", record_as, spec.name)),
            stdout: log(LogStream::Stdout),
            stderr: log(LogStream::Stderr),
            netns,
            address,
            container: None,
            layer: None,
            clock_offset_millis: 0,
            starts: 0,
            as_test,
            scratch,
            spec,
        })
    }

    /// The node's log files, opened for appending (a restarted node goes on where it was).
    pub(super) fn open_logs(&self) -> Result<(File, File), String> {
        let open = |path: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("node {}: log {}: {e}", self.spec.name, path.display()))
        };
        Ok((open(&self.stdout)?, open(&self.stderr)?))
    }
}

/// What a container of a scenario is made from, beside its own spec.
#[derive(Debug)]
pub(super) struct Shared<'a> {
    pub(super) executor: &'a ContainerExecutor,
    pub(super) run_id: &'a RunId,
    pub(super) attempt: u32,
    pub(super) project_dir: &'a Path,
    /// The complete `/etc/hosts` of every container of the scenario.
    pub(super) hosts_file: &'a Path,
    /// The environment every container of the scenario starts from (psy's own, `PSY_*` of the
    /// attempt, `PSY_NODES` and the addresses).
    pub(super) base_env: &'a [(String, String)],
}

/// The container of `node`'s next start (or a readiness probe's, with `argv`, sharing the node's
/// network namespace and nothing else). `key` names its cgroup and writable layer, unique in
/// the run.
pub(super) fn container(
    shared: &Shared<'_>,
    node: &Node,
    argv: Option<Vec<String>>,
    key: u64,
    (stdout, stderr): (File, File),
) -> Result<(ContainerSpec, CgroupLimits), String> {
    let probe = argv.is_some();
    let mut env: Vec<(String, String)> = shared.base_env.to_vec();
    env.extend(node.spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.push(("PSY_NODE_NAME".into(), node.spec.name.clone()));
    env.push(("PSY_SCRATCH".into(), node.scratch.display().to_string()));
    let mut as_test = node.as_test.clone();
    if probe {
        // A probe must not attach the node's volumes a second time.
        as_test.volumes.clear();
    }
    let request = AttemptRequest {
        run_id: shared.run_id,
        test: &as_test,
        record_as: &node.record_as,
        attempt: shared.attempt,
        cores: None,
        argv: argv.unwrap_or_else(|| node.spec.command.clone()),
        env,
        stdout,
        stderr,
        scratch: node.scratch.clone(),
        project_dir: shared.project_dir.to_path_buf(),
        key,
        stdout_path: node.stdout.clone(),
    };
    let (mut spec, mut limits) = shared.executor.container_spec(request)?;
    // `psy fault pause` freezes a node's cgroup.
    limits.freezable = !probe;
    spec.network = None;
    spec.join_netns = Some(
        node.netns
            .try_clone()
            .map_err(|e| format!("node {}: its network namespace: {e}", node.spec.name))?,
    );
    spec.hostname = node.spec.name.clone();
    spec.hosts_file = Some(shared.hosts_file.to_path_buf());
    if !probe && node.clock_offset_millis != 0 {
        spec.clock_offset = Some(ClockOffset::from_millis(node.clock_offset_millis));
    }
    Ok((spec, limits))
}
