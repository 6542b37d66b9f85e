//! `warm = true` through `psy run`: the same verdicts as cold pytest attempts (the fixture suite
//! of `pytest_verdicts.rs`), and each test in a sandbox of its own although it is a fork of one
//! interpreter: private `/tmp`, own PID namespace, read-only project, its memory limit (a hog is
//! OOM-killed alone and the next test still starts warm), its timeout, `os._exit`.

use crate::fixtures::{copy, tool_works};
use crate::support::{root, Project};

fn ready() -> bool {
    root() && tool_works("python3", &["-m", "pytest", "--version"])
}

/// The stdout log of `id`'s first attempt.
fn stdout_log(events: &crate::support::Events, id: &str) -> String {
    let attempt = &events.attempts(id)[0];
    let path = attempt["stdout_path"].as_str().unwrap_or_default();
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn warm_gives_the_verdicts_cold_attempts_give() {
    if !ready() {
        return;
    }
    let project = copy("pytest-verdicts");
    project.file("psyduck.toml", "[[discover]]\npytest = { warm = true }\n");
    let (out, events) = project.run_json(&[]);
    out.code(1);
    crate::pytest_verdicts::assert_fixture_verdicts(&out, &events);
    let skipped = events.attempts("tests/test_verdicts.py::test_skipped_by_mark");
    assert_eq!(skipped[0]["message"], "skipped: not on this machine");
    // Started warm (the warm child's log: a header per failing phase), not as `python -m pytest`.
    let log = stdout_log(&events, "tests/test_verdicts.py::test_fails");
    assert!(log.contains("test_fails (call) ____"), "{log}");
    assert!(!log.contains("short test summary"), "{log}");
}

const PROBES: &str = r#"
import os, time

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
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    assert os.getpid() < 10 and len(pids) < 5, (os.getpid(), pids)
    assert os.environ["PSY_TEST_ID"] == "tests/test_probes.py::test_isolated"
    try:
        open("written", "w")
    except OSError:
        pass
    else:
        raise AssertionError("the project is writable")

def test_hog():
    chunks = [bytearray(16 << 20) for _ in range(64)]

def test_exit():
    os._exit(3)

def test_hang():
    time.sleep(600)

def test_z_after():
    assert True
"#;

fn probes() -> Project {
    let project = Project::empty();
    project.file(
        "psyduck.toml",
        "[[discover]]\npytest = { args = [\"tests\"], warm = true }\nmemory = \"192MiB\"\ntimeout = \"5s\"\n",
    );
    project.file("tests/test_probes.py", PROBES);
    project
}

#[test]
fn warm_tests_keep_every_sandbox_guarantee() {
    if !ready() {
        return;
    }
    let project = probes();
    let (out, events) = project.run_json(&[]);
    out.code(1);
    let status = |item: &str| {
        events
            .status(&format!("tests/test_probes.py::{item}"))
            .to_string()
    };
    assert_eq!(status("test_tmp_a"), "pass", "{out}");
    assert_eq!(status("test_tmp_b"), "pass", "{out}");
    assert_eq!(status("test_isolated"), "pass", "{out}");
    assert_eq!(status("test_hog"), "oom", "{out}");
    assert_eq!(status("test_exit"), "fail", "{out}");
    assert_eq!(status("test_hang"), "timeout", "{out}");
    assert_eq!(status("test_z_after"), "pass", "{out}");
    let exit = &events.attempts("tests/test_probes.py::test_exit")[0]["exit"];
    assert_eq!(exit["code"], 3, "{exit}");
    assert!(!project.dir().join("written").exists());
    for item in ["test_isolated", "test_z_after"] {
        let log = stdout_log(&events, &format!("tests/test_probes.py::{item}"));
        assert!(
            !log.contains(" passed in "),
            "{item} did not start warm: {log}"
        );
    }
}
