//! `psy bench scenario`: how fast a multi-node scenario is up. A 3-node topology (each node
//! `sleep`, on the scenario's network, with a volume of its own) from the moment the run
//! admits it until its driver has started, beside the same three containers and a driver
//! started one after another with `unshare` (the peer has no network or volumes to set up);
//! then how long each fault takes until it is in effect, timed by the driver itself.

use super::stats::Series;
use anyhow::Context;
use clap::Args;
use psy_model::{NodeSpec, Resources, RunId, TestId, TestSpec, VolumeSpec};
use psy_runner::executor::{AttemptRequest, ContainerExecutor, Executor};
use psy_sandbox::Sandbox;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// Scenarios per series.
    #[arg(short = 'n', long, default_value_t = 30)]
    iterations: usize,
}

/// The faults the driver times, each as a JSON request sent over the fault socket.
const FAULTS: &[(&str, &str)] = &[
    ("pause", r#"{"fault":"pause","node":"n1"}"#),
    ("resume", r#"{"fault":"resume","node":"n1"}"#),
    (
        "partition",
        r#"{"fault":"partition","a":["n1"],"b":["n2","n3"]}"#,
    ),
    ("heal", r#"{"fault":"heal"}"#),
    (
        "link delay",
        r#"{"fault":"link","node":"n2","shape":{"delay":50}}"#,
    ),
    ("link clear", r#"{"fault":"link","node":"n2","clear":true}"#),
    ("kill", r#"{"fault":"kill","node":"n3"}"#),
    ("start", r#"{"fault":"start","node":"n3"}"#),
];

/// The driver: sends each fault, times it to its answer, prints `name ms ok` per line.
const DRIVER: &str = r#"
import json, os, socket, sys, time
for name, request in json.loads(sys.argv[1]):
    t = time.perf_counter()
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["PSY_FAULT_SOCKET"])
    s.sendall(request.encode() + b"\n")
    reply = json.loads(s.makefile().readline())
    ms = (time.perf_counter() - t) * 1000
    print(f"{name}\t{ms:.3f}\t{reply['ok']}\t{reply['message']}", flush=True)
"#;

pub fn run(args: ScenarioArgs) -> anyhow::Result<ExitCode> {
    // SAFETY: trivial getter.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!("psy bench scenario needs root (a scenario's network needs it)");
    }
    let n = args.iterations.max(1);
    let dir = tempfile::tempdir().context("a temporary project")?;
    std::fs::create_dir_all(dir.path().join(".psyduck"))?;
    let sandbox = Sandbox::new(&format!("bs{}", std::process::id()))?;
    let mut executor = ContainerExecutor::new(
        sandbox,
        psy_model::CpuPolicy::Shared,
        dir.path().join("volumes"),
        false,
    );
    let faults = serde_json::to_string(FAULTS)?;
    let mut up = Vec::with_capacity(n);
    let mut peer = Vec::with_capacity(n);
    let mut fault_times: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut refused: Vec<String> = Vec::new();
    // One warm-up round formats the volumes, as a test's first attempt does.
    for round in 0..=n {
        let driver = match round {
            0 => vec!["true".into()],
            _ => vec!["python3".into(), "-c".into(), DRIVER.into(), faults.clone()],
        };
        let (driver_started, stdout) = scenario_once(&mut executor, dir.path(), round, driver)?;
        if round == 0 {
            continue;
        }
        up.push(driver_started);
        peer.push(unshare_three_and_driver()?);
        for line in stdout.lines() {
            let mut parts = line.splitn(4, '\t');
            let (Some(name), Some(ms), Some(ok)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Some((name, _)) = FAULTS.iter().find(|(f, _)| *f == name) else {
                continue;
            };
            match (ms.parse::<f64>(), ok) {
                (Ok(ms), "True") => fault_times
                    .entry(name)
                    .or_default()
                    .push(Duration::from_secs_f64(ms / 1000.0)),
                _ => refused.push(format!("{name}: {}", parts.next().unwrap_or(""))),
            }
        }
    }
    executor.close();
    println!("{n} scenarios of 3 nodes (sleep, scenario network, a 16 MiB volume each) + driver");
    println!("{}", Series::header());
    let up = Series::new("psy: admitted -> 3 nodes up, driver started", up);
    let peer = Series::new("unshare: 3 containers + driver, one after another", peer);
    println!("{}", up.row());
    println!("{}", peer.row());
    println!(
        "psy median {:.1} ms (target <= 50 ms); psy / unshare = {:.2}x",
        up.median.as_secs_f64() * 1e3,
        up.median.as_secs_f64() / peer.median.as_secs_f64()
    );
    println!("\nfaults, from the driver's request to its answer (in effect):");
    println!("{}", Series::header());
    for (name, _) in FAULTS {
        match fault_times.remove(name) {
            Some(times) if !times.is_empty() => {
                println!("{}", Series::new(format!("psy fault {name}"), times).row())
            }
            _ => println!("psy fault {name}: not measured (refused, see below)"),
        }
    }
    refused.sort();
    refused.dedup();
    for r in refused {
        println!("refused: {r}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one scenario; returns when its driver started (from the executor's start) and what
/// the driver printed.
fn scenario_once(
    executor: &mut ContainerExecutor,
    project: &Path,
    round: usize,
    driver: Vec<String>,
) -> anyhow::Result<(Duration, String)> {
    let test = topology(driver);
    let scratch = project.join(format!("scratch-{round}"));
    let logs = project.join("logs");
    std::fs::create_dir_all(&scratch)?;
    std::fs::create_dir_all(&logs)?;
    let stdout_path = logs.join(format!("bench.{round}.out"));
    let run_id = RunId("20261130-000000-bnch".into());
    let request = AttemptRequest {
        run_id: &run_id,
        test: &test,
        record_as: &test.id,
        attempt: 1,
        cores: None,
        argv: test.command.clone(),
        env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
        stdout: std::fs::File::create(&stdout_path)?,
        stderr: std::fs::File::create(logs.join(format!("bench.{round}.err")))?,
        scratch: scratch.clone(),
        project_dir: project.to_path_buf(),
        key: round as u64 + 1,
        stdout_path: stdout_path.clone(),
    };
    let running = executor
        .start(request)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut fds = libc::pollfd {
        fd: running.wait_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd on the stack.
    unsafe { libc::poll(&mut fds, 1, 120_000) };
    let outcome = running.finish();
    if let Some(e) = outcome.error {
        anyhow::bail!("the scenario failed: {e}");
    }
    let timeline = std::fs::read_to_string(psy_runner::layout::scenario_file(
        &stdout_path,
        "scenario.jsonl",
    ))?;
    let started = timeline
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "driver-started")
        .and_then(|e| e["at_ms"].as_u64())
        .context("the timeline has no driver-started")?;
    let stdout = std::fs::read_to_string(&stdout_path)?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok((Duration::from_millis(started), stdout))
}

/// Three `sleep` nodes with a volume each, and `driver`.
fn topology(driver: Vec<String>) -> TestSpec {
    let node = |name: &str| NodeSpec {
        name: name.into(),
        command: vec!["sleep".into(), "1000".into()],
        cwd: PathBuf::from("/"),
        env: BTreeMap::new(),
        resources: Resources {
            cpu_millis: 100,
            memory_bytes: 64 << 20,
            ..Resources::default()
        },
        volumes: vec![VolumeSpec {
            name: "data".into(),
            size_bytes: 16 << 20,
            path: PathBuf::from("/tmp/data"),
        }],
        sandbox: Default::default(),
        ready: None,
        ready_timeout: Duration::from_secs(10),
        exit_fails_test: false,
        origin: "psy bench scenario".into(),
    };
    TestSpec {
        id: TestId("bench-scenario".into()),
        name: "bench-scenario".into(),
        variant: None,
        command: driver,
        cwd: PathBuf::from("/"),
        env: BTreeMap::new(),
        timeout: Duration::from_secs(60),
        retries: 0,
        resources: Resources::default(),
        tags: Vec::new(),
        origin: "psy bench scenario".into(),
        volumes: Vec::new(),
        sandbox: Default::default(),
        group: None,
        adapter: None,
        labels: BTreeMap::new(),
        nodes: vec![node("n1"), node("n2"), node("n3")],
        warm: None,
    }
}

/// The peer: three `unshare` containers running `sleep`, started one after another, then a
/// driver (`true`) in a fourth; the time until the driver ran.
fn unshare_three_and_driver() -> anyhow::Result<Duration> {
    let unshare = |cmd: &[&str]| {
        Command::new("unshare")
            .args(super::spawn::UNSHARE_ALL)
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    let t = Instant::now();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(unshare(&["sleep", "1000"])?);
    }
    let status = unshare(&["true"])?.wait()?;
    let elapsed = t.elapsed();
    for mut node in nodes {
        let _ = node.kill();
        let _ = node.wait();
    }
    anyhow::ensure!(status.success(), "unshare ... true failed: {status}");
    Ok(elapsed)
}
