//! A scripted run covering every outcome: pass, fail after a retry, flaky, OOM, timeout, error, skipped,
//! plus a repeated warning and one test never run. Output files live in a temp dir.

use psy_model::events::RunSummary;
use psy_model::{
    AttemptResult, AttemptStatus, ExitInfo, Resources, RunEvent, RunId, TestId, TestResult,
    TestStatus,
};
use std::fs;
use std::path::Path;

pub(crate) const RUN: &str = "20261126-063424-3fa2";
pub(crate) const WARNING: &str = "cgroup v1 host: CPU guarantees are best-effort";
pub(crate) const T0: u64 = 1_795_000_000_000;

pub(crate) struct Script {
    /// Keeps the output files alive for the test's duration.
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) events: Vec<RunEvent>,
}

fn attempt(dir: &Path, id: &str, n: u32, status: AttemptStatus, ms: u64) -> AttemptResult {
    let stem = TestId(id.into()).file_stem();
    AttemptResult {
        test_id: TestId(id.into()),
        attempt: n,
        status,
        exit: ExitInfo {
            code: Some(if status == AttemptStatus::Pass { 0 } else { 1 }),
            signal: None,
        },
        started_at_ms: T0 + u64::from(n) * 1000,
        duration_ms: ms,
        cpu_time_ms: Some(ms / 2),
        peak_memory_bytes: Some(10 << 20),
        io_read_bytes: None,
        io_write_bytes: None,
        io_read_ops: None,
        io_write_ops: None,
        net_sent_bytes: None,
        net_received_bytes: None,
        image: None,
        stdout_path: dir.join(format!("{stem}.{n}.stdout")),
        stderr_path: dir.join(format!("{stem}.{n}.stderr")),
        message: None,
    }
}

fn started(id: &str, n: u32, memory_bytes: u64) -> RunEvent {
    let resources = Resources {
        memory_bytes,
        ..Resources::default()
    };
    RunEvent::AttemptStarted {
        test_id: TestId(id.into()),
        attempt: n,
        resources,
        privileged: false,
    }
}

fn finished(result: AttemptResult) -> RunEvent {
    RunEvent::AttemptFinished { result }
}

fn test(id: &str, status: TestStatus, attempts: u32, ms: u64) -> RunEvent {
    RunEvent::TestFinished {
        result: TestResult {
            test_id: TestId(id.into()),
            status,
            attempts,
            duration_ms: ms,
        },
    }
}

fn retry(id: &str, next_attempt: u32) -> RunEvent {
    RunEvent::AttemptRetrying {
        test_id: TestId(id.into()),
        next_attempt,
    }
}

pub(crate) const PASS: &str = "unit::math::add@debug";
pub(crate) const FAIL: &str = "unit::parser::eof@debug";
pub(crate) const FLAKY: &str = "net/dns.sh";
pub(crate) const OOM: &str = "big";
pub(crate) const TIMEOUT: &str = "slow";
pub(crate) const ERROR: &str = "broken";
/// A nextest id: `<binary id> <test name>`.
pub(crate) const SKIPPED: &str = "c::it slow_one";

/// Events up to (not including) `RunFinished`, then `RunFinished` last.
pub(crate) fn script() -> Script {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut ev = vec![RunEvent::RunStarted {
        run_id: RunId(RUN.into()),
        total: 8,
        started_at_ms: T0,
        expected_ms: Some(12_000),
    }];
    ev.push(RunEvent::Warning {
        message: WARNING.into(),
    });

    // Two tests run side by side.
    ev.push(started(PASS, 1, 512 << 20));
    ev.push(started(FAIL, 1, 512 << 20));
    let pass = attempt(d, PASS, 1, AttemptStatus::Pass, 20);
    fs::write(&pass.stdout_path, "all good\n").unwrap();
    ev.push(finished(pass));
    ev.push(test(PASS, TestStatus::Pass, 1, 20));

    let fail1 = attempt(d, FAIL, 1, AttemptStatus::Fail, 240);
    fs::write(&fail1.stdout_path, "first try output\n").unwrap();
    ev.push(finished(fail1));
    ev.push(retry(FAIL, 2));
    ev.push(RunEvent::Warning {
        message: WARNING.into(),
    });
    ev.push(started(FAIL, 2, 512 << 20));
    let fail2 = attempt(d, FAIL, 2, AttemptStatus::Fail, 250);
    let out: String = (1..=30).map(|i| format!("parser out {i}\n")).collect();
    fs::write(&fail2.stdout_path, out).unwrap();
    fs::write(
        &fail2.stderr_path,
        "\x1b[31massertion failed\x1b[0m: left == right\n",
    )
    .unwrap();
    ev.push(finished(fail2));
    ev.push(test(FAIL, TestStatus::Fail, 2, 490));

    ev.push(started(FLAKY, 1, 64 << 20));
    let mut flaky1 = attempt(d, FLAKY, 1, AttemptStatus::Fail, 300);
    flaky1.exit = ExitInfo {
        code: None,
        signal: Some(9),
    };
    fs::write(&flaky1.stderr_path, "dns lookup failed\n").unwrap();
    ev.push(finished(flaky1));
    ev.push(retry(FLAKY, 2));
    ev.push(started(FLAKY, 2, 64 << 20));
    ev.push(finished(attempt(d, FLAKY, 2, AttemptStatus::Pass, 100)));
    ev.push(test(FLAKY, TestStatus::Flaky, 2, 400));

    ev.push(started(OOM, 1, 512 << 20));
    let mut oom = attempt(d, OOM, 1, AttemptStatus::Oom, 2000);
    oom.exit = ExitInfo {
        code: None,
        signal: Some(9),
    };
    oom.peak_memory_bytes = Some(512 << 20);
    fs::write(&oom.stdout_path, "allocating\n").unwrap();
    fs::write(&oom.stderr_path, "").unwrap();
    ev.push(finished(oom));
    ev.push(test(OOM, TestStatus::Oom, 1, 2000));

    ev.push(started(TIMEOUT, 1, 512 << 20));
    let mut slow = attempt(d, TIMEOUT, 1, AttemptStatus::Timeout, 10_000);
    slow.exit = ExitInfo {
        code: None,
        signal: Some(9),
    };
    fs::write(&slow.stdout_path, "waiting...\n").unwrap();
    ev.push(finished(slow));
    ev.push(test(TIMEOUT, TestStatus::Timeout, 1, 10_000));

    ev.push(started(ERROR, 1, 512 << 20));
    let mut broken = attempt(d, ERROR, 1, AttemptStatus::Error, 1);
    broken.exit = ExitInfo::default();
    broken.message = Some("command not found: frobnicate".into());
    // No output files: the test never ran.
    ev.push(finished(broken));
    ev.push(test(ERROR, TestStatus::Error, 1, 1));

    ev.push(started(SKIPPED, 1, 512 << 20));
    let mut ignored = attempt(d, SKIPPED, 1, AttemptStatus::Skipped, 3);
    ignored.exit.code = Some(0);
    ignored.message = Some("ignored: needs a GPU".into());
    ev.push(finished(ignored));
    ev.push(test(SKIPPED, TestStatus::Skipped, 1, 3));

    let summary = RunSummary {
        total: 8,
        passed: 1,
        failed: 1,
        flaky: 1,
        timed_out: 1,
        oom: 1,
        errors: 1,
        skipped: 1,
        not_run: 1,
        duration_ms: 12_345,
    };
    ev.push(RunEvent::RunFinished {
        run_id: RunId(RUN.into()),
        summary,
    });
    Script {
        _dir: dir,
        events: ev,
    }
}
