//! The run loop with a fake executor, the in-memory store and the local log store: what it
//! records and emits for passing, retried, failing and unstartable tests.

use super::{run, RunSettings};
use crate::executor::{AttemptRequest, ExecOutcome, Executor, Running};
use crate::jobs::{LocalJobs, RunControl};
use crate::layout::StateDir;
use crate::logs::LocalLogs;
use psy_model::{
    AttemptKey, Capacity, ExitInfo, LogStore, LogStream, RunEvent, RunId, TestId, TestSpec,
    TestStatus,
};
use psy_scheduler::Limits;
use psy_store::{MemoryStore, Store};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Runs each test's command in its head: `pass`, `fail`, `fail-once` (fails attempt 1),
/// `unstartable` (refused at start). Each prints `out <attempt>` on stdout.
#[derive(Debug, Default)]
struct FakeExecutor;

/// An attempt that has already ended: its fd is the read end of a pipe whose writer is closed.
#[derive(Debug)]
struct Ended {
    fd: OwnedFd,
    code: i32,
}

impl Executor for FakeExecutor {
    fn start(&mut self, mut request: AttemptRequest<'_>) -> Result<Box<dyn Running>, String> {
        let code = match (request.test.command[0].as_str(), request.attempt) {
            ("unstartable", _) => return Err("cannot start".into()),
            ("pass", _) | ("fail-once", 2..) => 0,
            _ => 1,
        };
        writeln!(request.stdout, "out {}", request.attempt).map_err(|e| e.to_string())?;
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two descriptors we pass.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        // SAFETY: both descriptors were just made and are owned here; the write end closes.
        let (fd, _writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(Box::new(Ended { fd, code }))
    }

    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    fn close(&mut self) {}
}

impl Running for Ended {
    fn wait_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn kill(&mut self) {}

    fn set_cores(&mut self, _cores: &[u32]) {}

    fn finish(self: Box<Self>) -> ExecOutcome {
        ExecOutcome {
            exit: ExitInfo {
                code: Some(self.code),
                signal: None,
            },
            wall_time: Duration::from_millis(5),
            ..Default::default()
        }
    }
}

fn test(command: &str) -> TestSpec {
    TestSpec {
        id: TestId(command.into()),
        name: command.into(),
        command: vec![command.into()],
        retries: 1,
        ..crate::attempt::tests::spec()
    }
}

/// What a run of tests with these commands left.
struct Ran {
    _dir: tempfile::TempDir,
    run_id: RunId,
    outcome: super::RunOutcome,
    store: MemoryStore,
    logs: LocalLogs,
    events: Vec<RunEvent>,
}

fn run_tests(commands: &[&str]) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path());
    let run_id = RunId("r1".into());
    let settings = RunSettings {
        run_id: run_id.clone(),
        project_dir: dir.path().to_path_buf(),
        state: state.clone(),
        capacity: Capacity {
            cpu_millis: 2000,
            memory_bytes: 1 << 30,
            cores: vec![0, 1],
            io: Default::default(),
            network: Default::default(),
        },
        cpu_policy: Default::default(),
        limits: Limits::default(),
        manifest: "psyduck.toml".into(),
        command_line: "psy run".into(),
        warnings: Vec::new(),
    };
    let tests = commands.iter().map(|c| test(c)).collect();
    let mut jobs = LocalJobs::new(tests, &Default::default(), None, RunControl::default());
    let mut store = MemoryStore::new();
    let logs = LocalLogs::new(state);
    let mut events = Vec::new();
    let outcome = run(
        settings,
        &mut jobs,
        &mut store,
        &logs,
        &mut FakeExecutor,
        &mut |e| events.push(e.clone()),
    )
    .unwrap();
    Ran {
        _dir: dir,
        run_id,
        outcome,
        store,
        logs,
        events,
    }
}

/// `(test, verdict, attempts)` sorted by test.
fn verdicts(ran: &Ran) -> Vec<(String, TestStatus, u32)> {
    let mut verdicts: Vec<_> = ran
        .store
        .test_results(&ran.run_id)
        .unwrap()
        .into_iter()
        .map(|r| (r.test_id.to_string(), r.status, r.attempts))
        .collect();
    verdicts.sort_by(|a, b| a.0.cmp(&b.0));
    verdicts
}

#[test]
fn records_and_reports_every_attempt_and_verdict() {
    let ran = run_tests(&["pass", "fail-once", "fail", "unstartable"]);
    let (outcome, store, logs, events, run_id) = (
        &ran.outcome,
        &ran.store,
        &ran.logs,
        &ran.events,
        ran.run_id.clone(),
    );
    let s = &outcome.summary;
    assert_eq!(
        (s.total, s.passed, s.flaky, s.failed, s.errors, s.not_run),
        (4, 1, 1, 1, 1, 0)
    );
    assert_eq!(
        verdicts(&ran),
        [
            ("fail".into(), TestStatus::Fail, 2),
            ("fail-once".into(), TestStatus::Flaky, 2),
            ("pass".into(), TestStatus::Pass, 1),
            ("unstartable".into(), TestStatus::Error, 2),
        ]
    );
    assert_eq!(store.attempts(&run_id).unwrap().len(), 7);
    let retries = events
        .iter()
        .filter(|e| matches!(e, RunEvent::AttemptRetrying { .. }))
        .count();
    assert_eq!(retries, 3);
    assert!(matches!(
        events.first(),
        Some(RunEvent::RunStarted { total: 4, .. })
    ));
    assert!(matches!(events.last(), Some(RunEvent::RunFinished { .. })));

    let key = AttemptKey {
        run_id,
        test_id: TestId("fail-once".into()),
        attempt: 2,
    };
    let mut text = String::new();
    let mut blob = logs.read(&key, LogStream::Stdout).unwrap().unwrap();
    blob.read_to_string(&mut text).unwrap();
    assert_eq!(text, "out 2\n");
    assert!(
        logs.read(&key, LogStream::Stderr).unwrap().is_none(),
        "empty: no blob"
    );
}

#[test]
fn a_start_that_failed_is_retried_when_nothing_else_runs() {
    let ran = run_tests(&["unstartable"]);
    assert_eq!(
        verdicts(&ran),
        [("unstartable".into(), TestStatus::Error, 2)]
    );
    assert_eq!(ran.outcome.summary.not_run, 0);
}
