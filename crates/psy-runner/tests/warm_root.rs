//! Warm pytest starts through the container executor, as root: each test is a fork of one warm
//! interpreter that joined a container of its own. The probes attack what a cold container
//! guarantees: a private `/tmp`, its own PID namespace, hostname and user namespace, a read-only
//! project, its environment only, its memory limit (OOM-killed alone), kill on timeout.

use psy_model::{Adapter, Resources, RunId, TestId, TestSpec, WarmStart};
use psy_runner::executor::{AttemptRequest, ContainerExecutor, ExecOutcome, Executor, Running};
use psy_sandbox::Sandbox;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn is_root() -> bool {
    // SAFETY: trivial getter.
    unsafe { libc::geteuid() == 0 }
}

const PROBES: &str = r#"
import os, socket, time

def _same_tmp(mine):
    with open("/tmp/shared", "w") as f:
        f.write(mine)
    time.sleep(0.5)
    with open("/tmp/shared") as f:
        assert f.read() == mine

def test_tmp_a():
    _same_tmp("a")

def test_tmp_b():
    _same_tmp("b")

def test_isolated():
    print("id", os.environ["PSY_TEST_ID"], "pid", os.getpid(), "host", socket.gethostname())
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    print("pids", sorted(pids, key=int))
    assert os.getpid() < 10, os.getpid()
    assert len(pids) < 5, pids
    assert "CARGO_MANIFEST_DIR" not in os.environ, "psy's own environment leaked"
    with open("/proc/self/uid_map") as f:
        print("uid_map", f.read().split())
    try:
        open(os.path.join(os.environ["PROJECT"], "written"), "w")
    except OSError as e:
        print("project", e.strerror)
    else:
        raise AssertionError("the project directory is writable")
    try:
        os.mkdir("/sys/fs/cgroup/escape")
    except OSError as e:
        print("cgroup", e.strerror)
    else:
        raise AssertionError("made a cgroup")

def test_hog():
    chunks = []
    for _ in range(64):
        chunks.append(bytearray(32 << 20))

def test_exit():
    os._exit(3)

def test_hang():
    time.sleep(600)

def test_fail():
    assert 1 == 2
"#;

fn warm_test(dir: &Path, item: &str) -> TestSpec {
    TestSpec {
        id: TestId(item.into()),
        name: item.into(),
        variant: None,
        command: vec!["python3".into(), "-m".into(), "pytest".into(), item.into()],
        cwd: dir.to_path_buf(),
        env: BTreeMap::new(),
        timeout: Duration::from_secs(60),
        retries: 0,
        resources: Resources {
            memory_bytes: 256 << 20,
            ..Resources::default()
        },
        tags: Vec::new(),
        origin: "warm_root.rs".into(),
        volumes: Vec::new(),
        sandbox: Default::default(),
        group: None,
        adapter: Some(Adapter::Pytest),
        labels: BTreeMap::new(),
        nodes: Vec::new(),
        warm: Some(WarmStart {
            python: "python3".into(),
            args: vec!["-p".into(), "no:cacheprovider".into()],
            dir: dir.to_path_buf(),
            item: item.into(),
            fixtures: Vec::new(),
        }),
    }
}

struct Attempt {
    outcome: ExecOutcome,
    stdout: String,
    stderr: String,
    result: String,
}

/// Starts every item at once (one executor, one warm interpreter), waits for each (killing
/// those still running after `kill_after`), and returns what each did, by item.
fn run_all(items: &[&str], kill_after: Duration) -> BTreeMap<String, Attempt> {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(project.join(".psyduck")).unwrap();
    std::fs::write(project.join("test_probes.py"), PROBES).unwrap();
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let sandbox = Sandbox::new(&format!("wr{}x{n}", std::process::id())).unwrap();
    let mut executor = ContainerExecutor::new(
        sandbox,
        psy_model::CpuPolicy::Shared,
        dir.path().join("volumes"),
        false,
    );
    let run_id = RunId("20261130-000000-warm".into());
    let tests: Vec<TestSpec> = items
        .iter()
        .map(|item| warm_test(&project, &format!("test_probes.py::{item}")))
        .collect();
    // (name, attempt, stdout, stderr, scratch)
    type Started = (String, Box<dyn Running>, PathBuf, PathBuf, PathBuf);
    let mut running: Vec<Started> = Vec::new();
    for (key, test) in tests.iter().enumerate() {
        let scratch = dir.path().join(format!("scratch/{key}"));
        std::fs::create_dir_all(&scratch).unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let stdout_path = logs.join(format!("{key}.1.out"));
        let stderr_path = logs.join(format!("{key}.1.err"));
        let env = vec![
            ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
            ("PROJECT".to_owned(), project.display().to_string()),
            ("PSY_TEST_ID".to_owned(), test.id.to_string()),
            ("PSY_ATTEMPT".to_owned(), "1".to_owned()),
            ("PSY_SCRATCH".to_owned(), scratch.display().to_string()),
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
            project_dir: project.clone(),
            key: key as u64 + 1,
            stdout_path: stdout_path.clone(),
        };
        let started = executor.start(request).expect("a warm start");
        running.push((
            test.name.clone(),
            started,
            stdout_path,
            stderr_path,
            scratch,
        ));
    }
    let deadline = std::time::Instant::now() + kill_after;
    let mut done = BTreeMap::new();
    for (name, mut attempt, stdout, stderr, scratch) in running {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut fds = libc::pollfd {
            fd: attempt.wait_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd on the stack.
        if unsafe { libc::poll(&mut fds, 1, left.as_millis() as i32) } == 0 {
            attempt.kill();
        }
        let outcome = attempt.finish();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let item = name.rsplit("::").next().unwrap().to_string();
        let attempt = Attempt {
            outcome,
            stdout: read(&stdout),
            stderr: read(&stderr),
            result: read(&scratch.join(".psy-result.json")),
        };
        eprintln!(
            "--- {item}: {:?} oom={} error={:?}\nstdout:\n{}\nstderr:\n{}\nresult: {}",
            attempt.outcome.exit,
            attempt.outcome.oom_killed,
            attempt.outcome.error,
            attempt.stdout,
            attempt.stderr,
            attempt.result
        );
        done.insert(item, attempt);
    }
    executor.close();
    assert!(
        !project.join("written").exists(),
        "a test wrote into the project"
    );
    done
}

#[test]
fn warm_tests_are_isolated_like_cold_ones() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let done = run_all(
        &[
            "test_tmp_a",
            "test_tmp_b",
            "test_isolated",
            "test_hog",
            "test_exit",
            "test_hang",
            "test_fail",
        ],
        Duration::from_secs(20),
    );
    let code = |item: &str| done[item].outcome.exit.code;
    assert_eq!(code("test_tmp_a"), Some(0), "private /tmp");
    assert_eq!(code("test_tmp_b"), Some(0), "private /tmp");
    assert_eq!(code("test_isolated"), Some(0));
    assert!(done["test_isolated"]
        .stdout
        .contains("id test_probes.py::test_isolated"));
    assert!(done["test_isolated"].result.contains("\"passed\""));
    assert!(done["test_hog"].outcome.oom_killed, "the hog is OOM-killed");
    assert_eq!(done["test_hog"].outcome.exit.signal, Some(libc::SIGKILL));
    assert_eq!(code("test_exit"), Some(3));
    assert_eq!(done["test_hang"].outcome.exit.signal, Some(libc::SIGKILL));
    assert_eq!(code("test_fail"), Some(1));
    assert!(done["test_fail"].result.contains("\"failed\""));
    assert!(done["test_fail"].stdout.contains("assert 1 == 2"));
}
