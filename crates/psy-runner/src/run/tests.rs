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
/// `unstartable` (refused at start), `hang` (runs until killed). Each prints `out <attempt>`
/// on stdout. Remembers what each attempt was kept as and where its project was.
#[derive(Debug, Default)]
struct FakeExecutor {
    started: Vec<(TestId, std::path::PathBuf)>,
}

/// An attempt: its fd is the read end of a pipe, readable once the writer is closed (at once,
/// or when a hanging attempt is killed).
#[derive(Debug)]
struct Ended {
    fd: OwnedFd,
    code: i32,
    writer: Option<OwnedFd>,
}

impl Executor for FakeExecutor {
    fn start(&mut self, mut request: AttemptRequest<'_>) -> Result<Box<dyn Running>, String> {
        self.started
            .push((request.record_as.clone(), request.project_dir.clone()));
        let code = match (request.test.command[0].as_str(), request.attempt) {
            ("unstartable", _) => return Err("cannot start".into()),
            ("pass", _) | ("fail-once", 2..) => 0,
            ("hang", _) => 137,
            _ => 1,
        };
        writeln!(request.stdout, "out {}", request.attempt).map_err(|e| e.to_string())?;
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two descriptors we pass.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        // SAFETY: both descriptors were just made and are owned here; the write end closes.
        let (fd, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let writer = (request.test.command[0] == "hang").then_some(writer);
        Ok(Box::new(Ended { fd, code, writer }))
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

    fn kill(&mut self) {
        self.writer = None;
    }

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

fn settings(dir: &std::path::Path) -> RunSettings {
    RunSettings {
        run_id: RunId("r1".into()),
        project_dir: dir.to_path_buf(),
        state: StateDir::new(dir),
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
    }
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
        &mut FakeExecutor::default(),
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

/// A source like an agent's: nothing at first (the loop waits on its wake-up), then jobs of
/// several projects, two of them of one test id, then a withdrawal of the one still running.
struct Waking {
    wake: std::os::unix::net::UnixStream,
    arrived: std::sync::mpsc::Receiver<Vec<crate::jobs::AttemptJob>>,
    finished: Vec<(String, u32)>,
    cancelled: Vec<u64>,
    withdraw: Vec<u64>,
    outstanding: usize,
    offers: usize,
}

impl crate::jobs::JobSource for Waking {
    fn total(&self) -> usize {
        0
    }

    fn offer(&mut self) -> crate::jobs::Offer {
        self.offers += 1;
        let mut byte = [0u8; 8];
        while (&self.wake).read(&mut byte).is_ok_and(|n| n > 0) {}
        match self.arrived.try_recv() {
            Ok(jobs) => {
                self.outstanding += jobs.len();
                crate::jobs::Offer::Now(jobs)
            }
            Err(_) if self.outstanding > 0 || self.offers < 3 => crate::jobs::Offer::Later,
            Err(_) => crate::jobs::Offer::Done,
        }
    }

    fn finished(
        &mut self,
        _job: &crate::jobs::AttemptJob,
        result: &psy_model::AttemptResult,
        _stopping: bool,
    ) -> crate::jobs::Settled {
        self.outstanding -= 1;
        self.finished
            .push((result.test_id.to_string(), result.attempt));
        if self.finished.len() == 2 {
            self.withdraw.push(3);
        }
        crate::jobs::Settled::default()
    }

    fn cancelled(&mut self, job: &crate::jobs::AttemptJob) {
        self.outstanding -= 1;
        self.cancelled.push(job.key);
    }

    fn wake_fd(&self) -> Option<RawFd> {
        Some(self.wake.as_raw_fd())
    }

    fn withdrawn(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.withdraw)
    }
}

#[test]
fn a_waking_source_feeds_jobs_of_many_projects_and_withdraws_one() {
    use crate::jobs::{AttemptJob, JobOrigin};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let (rx, tx) = std::os::unix::net::UnixStream::pair().unwrap();
    rx.set_nonblocking(true).unwrap();
    let (send, arrived) = std::sync::mpsc::channel();
    let job = |key: u64, command: &str, run: &str| AttemptJob {
        key,
        test: Arc::new({
            let mut spec = TestSpec {
                retries: 0,
                ..test(command)
            };
            // All three run at once: the withdrawn one is killed, not dropped.
            spec.resources.cpu_millis = 100;
            spec.resources.memory_bytes = 1 << 20;
            spec
        }),
        attempt: 1,
        expected: None,
        origin: Some(Arc::new(JobOrigin {
            project_dir: std::path::PathBuf::from(format!("/projects/{run}")),
            record_as: TestId(format!("{run}/{command}")),
        })),
    };
    let jobs = vec![
        job(1, "pass", "r1"),
        job(2, "pass", "r2"),
        job(3, "hang", "r3"),
    ];
    let feeder = std::thread::spawn(move || {
        // After the loop found nothing and waits.
        std::thread::sleep(Duration::from_millis(50));
        send.send(jobs).unwrap();
        (&tx).write_all(b"!").unwrap();
        tx
    });
    let mut source = Waking {
        wake: rx,
        arrived,
        finished: Vec::new(),
        cancelled: Vec::new(),
        withdraw: Vec::new(),
        outstanding: 0,
        offers: 0,
    };
    let mut store = MemoryStore::new();
    let logs = LocalLogs::new(StateDir::new(dir.path()));
    let mut executor = FakeExecutor::default();
    let outcome = run(
        settings(dir.path()),
        &mut source,
        &mut store,
        &logs,
        &mut executor,
        &mut |_| {},
    )
    .unwrap();
    let _tx = feeder.join().unwrap();
    assert!(!outcome.interrupted);
    source.finished.sort();
    assert_eq!(
        source.finished,
        [("r1/pass".to_string(), 1), ("r2/pass".to_string(), 1)]
    );
    assert_eq!(source.cancelled, [3], "the withdrawn attempt was killed");
    let mut started = executor.started.clone();
    started.sort();
    let want: Vec<(TestId, std::path::PathBuf)> = ["r1/pass", "r2/pass", "r3/hang"]
        .iter()
        .map(|id| {
            let run = id.split('/').next().unwrap();
            (TestId((*id).into()), format!("/projects/{run}").into())
        })
        .collect();
    assert_eq!(started, want);
    let recorded: Vec<String> = store
        .attempts(&RunId("r1".into()))
        .unwrap()
        .iter()
        .map(|a| a.test_id.to_string())
        .collect();
    assert_eq!(
        recorded,
        ["r1/pass", "r2/pass"],
        "one record each, none for the killed one"
    );
    for run in ["r1", "r2"] {
        let key = AttemptKey {
            run_id: RunId("r1".into()),
            test_id: TestId(format!("{run}/pass")),
            attempt: 1,
        };
        let mut text = String::new();
        let mut blob = logs.read(&key, LogStream::Stdout).unwrap().unwrap();
        blob.read_to_string(&mut text).unwrap();
        assert_eq!(text, "out 1\n", "{run}: a log of its own");
    }
}
