//! Multi-node scenarios through the container executor, as root: nodes reach each other by
//! name, the driver waits for readiness, faults over the socket take effect, a node's volume
//! survives its kill and restart, and nothing is left afterwards.

use psy_model::{FaultReply, NodeSpec, ReadyProbe, Resources, RunId, TestId, TestSpec, VolumeSpec};
use psy_runner::executor::{AttemptRequest, ContainerExecutor, ExecOutcome, Executor};
use psy_sandbox::Sandbox;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

fn is_root() -> bool {
    // SAFETY: trivial getter.
    unsafe { libc::geteuid() == 0 }
}

fn node(name: &str, command: &str, ready: Option<ReadyProbe>) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        command: vec!["sh".into(), "-c".into(), command.into()],
        cwd: PathBuf::from("/"),
        env: BTreeMap::new(),
        resources: Resources {
            memory_bytes: 128 << 20,
            ..Resources::default()
        },
        volumes: Vec::new(),
        sandbox: Default::default(),
        ready,
        ready_timeout: Duration::from_secs(20),
        exit_fails_test: false,
        origin: "scenario_root.rs".into(),
    }
}

fn scenario(driver: &str, nodes: Vec<NodeSpec>) -> TestSpec {
    TestSpec {
        id: TestId("scenario".into()),
        name: "scenario".into(),
        variant: None,
        command: vec!["sh".into(), "-c".into(), driver.into()],
        cwd: PathBuf::from("/"),
        env: BTreeMap::new(),
        timeout: Duration::from_secs(60),
        retries: 0,
        resources: Resources::default(),
        tags: Vec::new(),
        origin: "scenario_root.rs".into(),
        volumes: Vec::new(),
        sandbox: Default::default(),
        group: None,
        adapter: None,
        labels: BTreeMap::new(),
        nodes,
        warm: None,
    }
}

/// Runs `test` as one attempt; returns its outcome, its stdout, the timeline and every log
/// file by name.
fn run(test: &TestSpec) -> (ExecOutcome, String, String, BTreeMap<String, String>) {
    run_beside(test, |_| String::new()).0
}

/// [`run`], with `beside` called on a thread of its own with the driver's scratch directory
/// once the attempt has started; returns what it returned too.
fn run_beside(
    test: &TestSpec,
    beside: impl FnOnce(PathBuf) -> String + Send + 'static,
) -> (
    (ExecOutcome, String, String, BTreeMap<String, String>),
    String,
) {
    // One scenario at a time: the checks for leftovers look at the whole machine.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // psy's state directory, which every container masks.
    std::fs::create_dir_all(dir.path().join(".psyduck")).unwrap();
    // Each test its own run group: closing one sandbox empties its group.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("sc{}x{n}", std::process::id());
    let sandbox = Sandbox::new(&name).unwrap();
    let volumes = dir.path().join("volumes");
    let mut executor = ContainerExecutor::new(
        sandbox,
        psy_model::CpuPolicy::Shared,
        volumes.clone(),
        false,
    );
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let stdout_path = logs.join("scenario.1.out");
    let stderr_path = logs.join("scenario.1.err");
    let run_id = RunId("20261130-000000-test".into());
    let env = vec![
        ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("PSY_TEST_ID".to_owned(), "scenario".to_owned()),
    ];
    let request = AttemptRequest {
        run_id: &run_id,
        test,
        record_as: &test.id,
        attempt: 1,
        cores: None,
        argv: test.command.clone(),
        env,
        stdout: std::fs::File::create(&stdout_path).unwrap(),
        stderr: std::fs::File::create(&stderr_path).unwrap(),
        scratch: scratch.clone(),
        project_dir: dir.path().to_path_buf(),
        key: 7,
        stdout_path: stdout_path.clone(),
    };
    let running = executor.start(request).unwrap();
    let side = {
        let scratch = scratch.clone();
        std::thread::spawn(move || beside(scratch))
    };
    let mut fds = libc::pollfd {
        fd: running.wait_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd on the stack.
    let n = unsafe { libc::poll(&mut fds, 1, 120_000) };
    assert_eq!(n, 1, "the scenario did not end within 2 minutes");
    let outcome = running.finish();
    executor.close();
    let side = side.join().unwrap();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let timeline = std::fs::read_to_string(psy_runner::layout::scenario_file(
        &stdout_path,
        "scenario.jsonl",
    ))
    .unwrap_or_default();
    eprintln!("stdout:\n{stdout}\nstderr:\n{stderr}\ntimeline:\n{timeline}");
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&logs).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        eprintln!("--- {}:\n{text}", entry.path().display());
        files.insert(entry.file_name().to_string_lossy().into_owned(), text);
    }
    assert!(
        !volumes.join("scenarios").join("a000007").exists(),
        "the scenario's work directory is left"
    );
    assert!(leftover_links().is_empty(), "{:?}", leftover_links());
    ((outcome, stdout, timeline, files), side)
}

/// A driver command that sends one fault (a JSON line) and prints the reply.
fn fault(json: &str) -> String {
    format!(
        "python3 -c 'import socket,os,sys; s=socket.socket(socket.AF_UNIX); \
         s.connect(os.environ[\"PSY_FAULT_SOCKET\"]); s.sendall(sys.argv[1].encode()+b\"\\n\"); \
         print(s.makefile().readline().strip())' '{json}'"
    )
}

/// Links of this process's scenario networks (`ps<pid hex>` and a kind letter).
fn leftover_links() -> Vec<String> {
    let prefix = format!("ps{:x}", std::process::id());
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.strip_prefix(&prefix)
                .is_some_and(|rest| rest.starts_with(['n', 'v', 't']))
        })
        .collect()
}

#[test]
fn nodes_reach_each_other_by_name_once_ready() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let server = node(
        "web",
        "mkdir -p /tmp/www && echo served-by-web > /tmp/www/index.html && \
         cd /tmp/www && exec python3 -m http.server 8080",
        Some(ReadyProbe::Tcp(8080)),
    );
    let mut client = node(
        "client",
        "/usr/sbin/tc qdisc show dev eth0; exec sleep 1000",
        Some(ReadyProbe::Command(vec!["true".into()])),
    );
    client.resources.network = Some(psy_model::NetworkRequest {
        egress_bps: Some(8_000_000),
        ingress_bps: None,
    });
    let test = scenario(
        "echo nodes=$PSY_NODES web=$PSY_NODE_WEB_ADDR; cat /etc/hosts; hostname; \
         python3 -c 'import urllib.request; print(urllib.request.urlopen(\"http://web:8080/\").read().decode())'",
        vec![server, client],
    );
    let (outcome, stdout, timeline, logs) = run(&test);
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.exit.code, Some(0), "{stdout}");
    // The node's `network` egress is a tbf on its eth0.
    let client_out = &logs["scenario.1.node.client.out"];
    assert!(
        client_out.contains("tbf") && client_out.contains("rate 8Mbit"),
        "{client_out}"
    );
    assert!(stdout.contains("nodes=web client"), "{stdout}");
    assert!(stdout.contains("served-by-web"), "{stdout}");
    assert!(timeline.contains("node-ready"), "{timeline}");
}

#[test]
fn a_killed_node_restarts_with_its_volume_and_faults_outside_are_refused() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut db = node(
        "db",
        "cat /tmp/data/marker 2>/dev/null; echo started >> /tmp/data/marker; exec sleep 1000",
        None,
    );
    db.volumes.push(VolumeSpec {
        name: "data".into(),
        size_bytes: 64 << 20,
        path: PathBuf::from("/tmp/data"),
    });
    let driver = format!(
        "{}; {}; {}; {}; {}",
        fault(r#"{"fault":"kill","node":"db"}"#),
        fault(r#"{"fault":"start","node":"db"}"#),
        fault(r#"{"fault":"pause","node":"db"}"#),
        fault(r#"{"fault":"resume","node":"db"}"#),
        fault(r#"{"fault":"kill","node":"nope"}"#),
    );
    let (outcome, stdout, timeline, logs) = run(&scenario(&driver, vec![db]));
    assert_eq!(outcome.error, None);
    let replies: Vec<FaultReply> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(replies.len(), 5, "{stdout}");
    assert!(replies[..4].iter().all(|r| r.ok), "{replies:?}");
    assert_eq!(
        replies[2].message, "paused db",
        "frozen by its cgroup's freezer"
    );
    assert!(!replies[4].ok && replies[4].message.contains("no node named"));
    assert!(timeline.contains("killed db"), "{timeline}");
    // The restarted node read what its first life wrote to the volume.
    assert_eq!(logs["scenario.1.node.db.out"], "started\n", "{logs:?}");
}

#[test]
fn a_node_that_must_not_exit_fails_the_test_and_a_slow_one_times_out() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut brittle = node("brittle", "sleep 0.3; exit 3", None);
    brittle.exit_fails_test = true;
    let (outcome, _, timeline, _) = run(&scenario("sleep 2", vec![brittle]));
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.exit.code, Some(0), "the driver itself passed");
    let failure = outcome.failure.expect("the node's exit fails the test");
    assert!(
        failure.contains("node brittle exited on its own (exit 3)"),
        "{failure}"
    );
    assert!(timeline.contains("node-exited"), "{timeline}");

    let mut slow = node("slow", "sleep 1000", Some(ReadyProbe::Tcp(9)));
    slow.ready_timeout = Duration::from_millis(500);
    let (outcome, _, _, _) = run(&scenario("true", vec![slow]));
    let error = outcome
        .error
        .expect("a node that never gets ready is an error");
    assert!(
        error.contains("node slow was not ready within 500ms"),
        "{error}"
    );
}

#[test]
fn only_the_driver_may_send_faults() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let target = node("target", "sleep 1000", None);
    let ((outcome, _, timeline, _), reply) =
        run_beside(&scenario("sleep 3", vec![target]), |scratch| {
            use std::io::{BufRead, Write};
            let socket = scratch.join(".psy-fault.sock");
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !socket.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
            stream
                .write_all(b"{\"fault\":\"kill\",\"node\":\"target\"}\n")
                .unwrap();
            let mut line = String::new();
            std::io::BufReader::new(stream)
                .read_line(&mut line)
                .unwrap();
            line
        });
    let reply: FaultReply = serde_json::from_str(&reply).unwrap();
    assert!(!reply.ok, "{reply:?}");
    assert!(reply.message.contains("only the driver"), "{reply:?}");
    assert_eq!(outcome.exit.code, Some(0));
    assert!(!timeline.contains("killed target"), "{timeline}");
}
