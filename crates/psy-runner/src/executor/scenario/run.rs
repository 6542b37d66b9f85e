//! One scenario attempt from start to end, on its own thread: the network, the nodes, their
//! readiness, the driver, the fault socket, and the tear-down.

use super::faults::FaultSocket;
use super::net::ScenarioNet;
use super::nodes::{self, Node, Shared};
use super::ready::TcpProber;
use super::timeline::Timeline;
use super::EventFd;
use crate::executor::container::{exec_outcome, remove_layer_of};
use crate::executor::{AttemptRequest, ContainerExecutor, ExecOutcome};
use psy_model::{ReadyProbe, RunId, TestId, TestSpec};
use psy_sandbox::Container;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often readiness is probed, and a stopping scenario looks at its stop signal.
const PROBE_INTERVAL: Duration = Duration::from_millis(25);

/// How long a node's processes get between SIGTERM and SIGKILL unless the fault says.
pub(super) const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Everything one scenario attempt needs, owned by its thread.
#[derive(Debug)]
pub(in crate::executor) struct Scenario {
    executor: ContainerExecutor,
    test: TestSpec,
    run_id: RunId,
    record_as: TestId,
    attempt: u32,
    key: u64,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    logs: Option<(File, File)>,
    scratch: PathBuf,
    project_dir: PathBuf,
    stdout_path: PathBuf,
    stop: Arc<EventFd>,
    started: Instant,
}

impl Scenario {
    pub(in crate::executor) fn new(
        executor: ContainerExecutor,
        req: AttemptRequest<'_>,
        stop: Arc<EventFd>,
    ) -> Scenario {
        Scenario {
            executor,
            test: req.test.clone(),
            run_id: req.run_id.clone(),
            record_as: req.record_as.clone(),
            attempt: req.attempt,
            key: req.key,
            argv: req.argv,
            env: req.env,
            logs: Some((req.stdout, req.stderr)),
            scratch: req.scratch,
            project_dir: req.project_dir,
            stdout_path: req.stdout_path,
            stop,
            started: Instant::now(),
        }
    }

    pub(in crate::executor) fn key(&self) -> u64 {
        self.key
    }

    /// Runs the whole scenario; the outcome is the driver's, or why it could not run.
    pub(in crate::executor) fn run(mut self) -> ExecOutcome {
        let timeline_path = crate::layout::scenario_file(&self.stdout_path, "scenario.jsonl");
        let mut timeline = Timeline::create(&timeline_path, self.started);
        let work = self.executor.scenario_dir(self.key);
        let outcome = match std::fs::create_dir_all(&work) {
            Ok(()) => self.run_in(&work, &mut timeline),
            Err(e) => failed(format!("creating {}: {e}", work.display())),
        };
        if let Err(e) = std::fs::remove_dir_all(&work) {
            tracing::warn!("removing the scenario's {}: {e}", work.display());
        }
        let mut outcome = outcome;
        outcome.wall_time = self.started.elapsed();
        outcome
    }

    fn run_in(&mut self, work: &Path, timeline: &mut Timeline) -> ExecOutcome {
        let sandbox = self.executor.sandbox();
        let net = match ScenarioNet::create() {
            Ok(net) => net,
            Err(e) => return failed(format!("{}: {e}", self.test.id)),
        };
        timeline.record(
            "network",
            None,
            true,
            format!("links shaped by {}", net.backend()),
        );
        // The driver is member 0, node i is member i + 1: a namespace each, attached at once.
        let mut namespaces = Vec::with_capacity(self.test.nodes.len() + 1);
        for _ in 0..=self.test.nodes.len() {
            match sandbox.network_namespace() {
                Ok(fd) => namespaces.push(fd),
                Err(e) => return failed(format!("{}: a network namespace: {e}", self.test.id)),
            }
        }
        let addresses = match net.attach_all(&namespaces) {
            Ok(addresses) => addresses,
            Err(e) => return failed(format!("{}: {e}", self.test.id)),
        };
        let rates = std::iter::once(self.test.resources.network)
            .chain(self.test.nodes.iter().map(|n| n.resources.network));
        for (index, rates) in rates.enumerate() {
            let Some(rates) = rates else { continue };
            if let Err(e) = net.limit(index as u32, rates) {
                return failed(format!("{} (member {index}): {e}", self.test.id));
            }
        }
        let mut namespaces = namespaces.into_iter().zip(addresses);
        let driver_ns = namespaces.next().expect("the driver's namespace");
        let mut nodes = Vec::with_capacity(self.test.nodes.len());
        for (spec, (fd, addr)) in self.test.nodes.iter().zip(namespaces) {
            let made = Node::new(
                spec.clone(),
                &self.test,
                &self.record_as,
                fd,
                addr,
                &work.join("scratch"),
                &self.stdout_path,
            );
            match made {
                Ok(node) => nodes.push(node),
                Err(e) => return failed(format!("node {} of {}: {e}", spec.name, self.test.id)),
            }
        }
        let hosts_file = work.join("hosts");
        if let Err(e) = std::fs::write(&hosts_file, hosts(&self.test, driver_ns.1, &nodes)) {
            return failed(format!("writing {}: {e}", hosts_file.display()));
        }
        let socket = match FaultSocket::bind(&self.scratch) {
            Ok(socket) => socket,
            Err(e) => return failed(format!("{}: the fault socket: {e}", self.test.id)),
        };
        let mut base_env = self.env.clone();
        base_env.push((
            "PSY_NODES".into(),
            nodes
                .iter()
                .map(|n| n.spec.name.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ));
        for node in &nodes {
            base_env.push((node.spec.address_variable(), node.address.to_string()));
        }
        let mut live = Live {
            nodes,
            net,
            prober: None,
            driver_ns: driver_ns.0,
            next_key: 0,
            key: self.key,
            stop: Arc::clone(&self.stop),
        };
        let shared = Shared {
            executor: &self.executor,
            run_id: &self.run_id,
            attempt: self.attempt,
            project_dir: &self.project_dir,
            hosts_file: &hosts_file,
            base_env: &base_env,
        };
        let all: Vec<usize> = (0..live.nodes.len()).collect();
        if let Err(e) = live.start_nodes(&shared, &all, timeline) {
            live.stop_all(timeline);
            return failed(format!("{}: {e}", self.test.id));
        }
        // The driver: the test's own command, once every node is ready.
        let mut driver_env = base_env.clone();
        driver_env.push((
            psy_model::scenario::FAULT_SOCKET_ENV.into(),
            socket.path().display().to_string(),
        ));
        prepend_psy_to_path(&mut driver_env);
        let (stdout, stderr) = self.logs.take().expect("the driver's logs are used once");
        let request = AttemptRequest {
            run_id: &self.run_id,
            test: &self.test,
            record_as: &self.record_as,
            attempt: self.attempt,
            cores: None,
            argv: self.argv.clone(),
            env: driver_env,
            stdout,
            stderr,
            scratch: self.scratch.clone(),
            project_dir: self.project_dir.clone(),
            key: self.key,
            stdout_path: self.stdout_path.clone(),
        };
        let driver = self
            .executor
            .container_spec(request)
            .and_then(|(mut spec, limits)| {
                spec.network = None;
                spec.join_netns = Some(
                    live.driver_ns
                        .try_clone()
                        .map_err(|e| format!("the driver's network namespace: {e}"))?,
                );
                spec.hosts_file = Some(hosts_file.clone());
                let cleanup = remove_layer_of(spec.image.as_ref());
                sandbox
                    .spawn(spec, &limits)
                    .map(|c| (c, cleanup))
                    .map_err(|e| e.to_string())
            });
        let (mut driver, cleanup) = match driver {
            Ok(driver) => driver,
            Err(e) => {
                live.stop_all(timeline);
                return failed(format!("the driver of {}: {e}", self.test.id));
            }
        };
        timeline.record("driver-started", None, true, self.argv.join(" "));
        let failure = live.serve(&shared, &mut driver, &socket, timeline);
        let outcome = driver.finish();
        cleanup();
        timeline.record(
            "driver-exited",
            None,
            outcome.exit.code == Some(0),
            describe_exit(&outcome.exit),
        );
        live.stop_all(timeline);
        // An agent's attempts take their volumes with them (the next attempt may run elsewhere).
        for node in &live.nodes {
            if let Some(dir) = self.executor.volumes_going_with(&node.record_as) {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!("removing the volumes {}: {e}", dir.display());
                    }
                }
            }
        }
        let mut outcome = exec_outcome(outcome, self.executor.image_id(&self.test));
        outcome.failure = failure;
        outcome
    }
}

/// A scenario whose nodes are up (or coming up).
#[derive(Debug)]
pub(super) struct Live {
    pub(super) nodes: Vec<Node>,
    pub(super) net: ScenarioNet,
    prober: Option<TcpProber>,
    driver_ns: OwnedFd,
    /// Containers started so far (names their cgroups apart).
    next_key: u64,
    key: u64,
    stop: Arc<EventFd>,
}

impl Live {
    /// A key unique in the run for the next container of this scenario: the attempt's key
    /// with the top bit set and a counter above it, so it never meets a test's key.
    fn container_key(&mut self) -> u64 {
        self.next_key += 1;
        (1 << 63) | (self.next_key << 40) | (self.key & ((1 << 40) - 1))
    }

    /// Starts the nodes at `which` (indices) and waits until each is ready.
    pub(super) fn start_nodes(
        &mut self,
        shared: &Shared<'_>,
        which: &[usize],
        timeline: &mut Timeline,
    ) -> Result<(), String> {
        for &i in which {
            let key = self.container_key();
            let node = &mut self.nodes[i];
            let logs = node.open_logs()?;
            let (spec, limits) = nodes::container(shared, node, None, key, logs)?;
            let layer = spec
                .image
                .as_ref()
                .and_then(|i| i.upper_dir.parent().map(PathBuf::from));
            let container = shared
                .executor
                .sandbox()
                .spawn(spec, &limits)
                .map_err(|e| format!("node {}: {e}", node.spec.name))?;
            node.container = Some(container);
            node.layer = layer;
            node.starts += 1;
            let mut detail = format!("{} at {}", node.spec.command.join(" "), node.address);
            if node.clock_offset_millis != 0 {
                let offset = super::faults::describe_offset(node.clock_offset_millis);
                detail.push_str(&format!(", clocks at {offset}"));
            }
            timeline.record("node-started", Some(&node.spec.name), true, detail);
        }
        for &i in which {
            self.wait_ready(shared, i, timeline)?;
        }
        Ok(())
    }

    /// Waits until node `i` passes its readiness probe (or fails: it exited, the probe timed
    /// out, the scenario is stopping).
    fn wait_ready(
        &mut self,
        shared: &Shared<'_>,
        i: usize,
        timeline: &mut Timeline,
    ) -> Result<(), String> {
        let Some(probe) = self.nodes[i].spec.ready.clone() else {
            timeline.record(
                "node-ready",
                Some(&self.nodes[i].spec.name),
                true,
                String::new(),
            );
            return Ok(());
        };
        let since = Instant::now();
        let deadline = since + self.nodes[i].spec.ready_timeout;
        loop {
            if self.stop.is_signalled() {
                return Err("stopped while nodes were starting".into());
            }
            if let Some(status) = self.exited(i) {
                let name = self.nodes[i].spec.name.clone();
                let message = format!("node {name} exited before it was ready ({status})");
                timeline.record("node-exited", Some(&name), false, message.clone());
                return Err(message);
            }
            let ready = match &probe {
                ReadyProbe::Tcp(port) => {
                    if self.prober.is_none() {
                        let fd = self
                            .driver_ns
                            .try_clone()
                            .map_err(|e| format!("the readiness prober: {e}"))?;
                        self.prober = Some(TcpProber::start(fd)?);
                    }
                    let prober = self.prober.as_ref().expect("started above");
                    prober.accepts(self.nodes[i].address, *port)
                }
                ReadyProbe::Command(argv) => self.probe_command(shared, i, argv, deadline)?,
            };
            let node = &self.nodes[i].spec.name;
            if ready {
                let took = since.elapsed();
                timeline.record("node-ready", Some(node), true, format!("after {took:?}"));
                return Ok(());
            }
            if Instant::now() >= deadline {
                let message = format!(
                    "node {node} was not ready within {:?} ({})",
                    self.nodes[i].spec.ready_timeout,
                    describe_probe(&probe)
                );
                timeline.record("node-not-ready", Some(node), false, message.clone());
                return Err(message);
            }
            std::thread::sleep(PROBE_INTERVAL);
        }
    }

    /// Runs a command probe once in a container sharing node `i`'s network; `true` on exit 0.
    fn probe_command(
        &mut self,
        shared: &Shared<'_>,
        i: usize,
        argv: &[String],
        deadline: Instant,
    ) -> Result<bool, String> {
        let key = self.container_key();
        let node = &self.nodes[i];
        let log = crate::layout::scenario_file(&node.stdout, "ready.log");
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|e| format!("probe log {}: {e}", log.display()))
        };
        let (spec, mut limits) =
            nodes::container(shared, node, Some(argv.to_vec()), key, (open()?, open()?))?;
        limits.io = None;
        let cleanup = remove_layer_of(spec.image.as_ref());
        let mut probe = shared
            .executor
            .sandbox()
            .spawn(spec, &limits)
            .map_err(|e| format!("node {}'s readiness command: {e}", node.spec.name))?;
        let left = deadline.saturating_duration_since(Instant::now()) + PROBE_INTERVAL;
        let ended = probe.wait_timeout(Some(left)).unwrap_or(false);
        if !ended {
            probe.kill();
        }
        let outcome = probe.finish();
        cleanup();
        Ok(ended && outcome.setup_error.is_none() && outcome.exit.code == Some(0))
    }

    /// How node `i`'s container ended, if it has (it is then finished and gone).
    pub(super) fn exited(&mut self, i: usize) -> Option<String> {
        let node = &mut self.nodes[i];
        let container = node.container.as_mut()?;
        if !container
            .wait_timeout(Some(Duration::ZERO))
            .unwrap_or(false)
        {
            return None;
        }
        let container = node.container.take().expect("checked above");
        Some(node.finish(container))
    }

    /// Serves the driver: fault requests, nodes exiting on their own, until the driver ends or
    /// the scenario is stopped. Returns why the test fails despite its driver (a node with
    /// `exit-fails-test` exited).
    fn serve(
        &mut self,
        shared: &Shared<'_>,
        driver: &mut Container,
        socket: &FaultSocket,
        timeline: &mut Timeline,
    ) -> Option<String> {
        let mut failure = None;
        loop {
            let mut fds = vec![
                poll_in(self.stop.as_raw_fd()),
                poll_in(driver.pidfd()),
                poll_in(socket.as_raw_fd()),
            ];
            let watched: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].container.is_some())
                .collect();
            fds.extend(
                watched
                    .iter()
                    .map(|&i| poll_in(self.nodes[i].container.as_ref().expect("filtered").pidfd())),
            );
            // SAFETY: `fds` lives across the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    tracing::warn!("scenario poll: {e}");
                    std::thread::sleep(PROBE_INTERVAL);
                }
                continue;
            }
            if fds[0].revents != 0 {
                driver.kill();
                return failure;
            }
            if fds[1].revents != 0 {
                driver.mark_exited();
                return failure;
            }
            for (slot, &i) in fds[3..].iter().zip(&watched) {
                if slot.revents == 0 {
                    continue;
                }
                if let Some(status) = self.exited(i) {
                    let node = &self.nodes[i].spec;
                    let fails = node.exit_fails_test;
                    let detail = format!("exited on its own: {status}");
                    timeline.record("node-exited", Some(&node.name), !fails, detail);
                    if fails && failure.is_none() {
                        failure = Some(format!(
                            "node {} exited on its own ({status}) and has exit-fails-test = true",
                            node.name
                        ));
                    }
                }
            }
            if fds[2].revents != 0 {
                socket.serve_one(driver, |request| {
                    let result = self.apply(shared, request, timeline);
                    let (ok, detail) = match &result {
                        Ok(done) => (true, format!("{request:?}: {done}")),
                        Err(why) => (false, format!("{request:?}: {why}")),
                    };
                    timeline.record("fault", None, ok, detail);
                    result
                });
            }
        }
    }

    /// Kills every node still running and finishes it (at the end, or after a failure).
    pub(super) fn stop_all(&mut self, timeline: &mut Timeline) {
        for node in &mut self.nodes {
            if let Some(container) = node.container.take() {
                container.kill();
                let status = node.finish(container);
                timeline.record("node-stopped", Some(&node.spec.name), true, status);
            }
        }
    }
}

impl Node {
    /// Reaps `container` (this node's, which has ended or was killed) and says how it ended.
    pub(super) fn finish(&mut self, container: Container) -> String {
        let outcome = container.finish();
        if let Some(layer) = self.layer.take() {
            let _ = std::fs::remove_dir_all(layer);
        }
        let mut status = match &outcome.setup_error {
            Some(e) => format!("could not start: {e}"),
            None => describe_exit(&outcome.exit),
        };
        if outcome.stats.oom_killed {
            status.push_str(", killed by its memory limit");
        }
        status
    }
}

/// `exit 0`, `exit 3`, `killed by signal 9`.
pub(super) fn describe_exit(exit: &psy_model::ExitInfo) -> String {
    match (exit.code, exit.signal) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "did not start".into(),
    }
}

fn describe_probe(probe: &ReadyProbe) -> String {
    match probe {
        ReadyProbe::Tcp(port) => format!("nothing accepted TCP connections on port {port}"),
        ReadyProbe::Command(argv) => format!("`{}` did not exit 0", argv.join(" ")),
    }
}

fn poll_in(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// An outcome for a scenario that could not run.
fn failed(message: String) -> ExecOutcome {
    ExecOutcome {
        error: Some(message),
        ..ExecOutcome::default()
    }
}

/// The scenario's `/etc/hosts`: localhost, the driver under its hostname, each node by name.
fn hosts(test: &TestSpec, driver: std::net::Ipv4Addr, nodes: &[Node]) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str(&format!("{driver}\t{} driver\n", test.id.hostname()));
    for node in nodes {
        out.push_str(&format!("{}\t{}\n", node.address, node.spec.name));
    }
    out
}

/// Puts the directory of the running `psy` first on `PATH`, so the driver finds `psy fault`.
fn prepend_psy_to_path(env: &mut Vec<(String, String)>) {
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    else {
        return;
    };
    let dir = dir.display().to_string();
    match env.iter_mut().rev().find(|(k, _)| k == "PATH") {
        Some((_, path)) => *path = format!("{dir}:{path}"),
        None => env.push(("PATH".into(), dir)),
    }
}
