//! The run loop: schedule -> start -> wait (pidfds, deadlines, Ctrl-C) -> record -> report.
//!
//! One thread drives everything. It is also the thread that creates every container, which the
//! sandbox requires (a container dies with the thread that created it, so a killed psy leaves
//! no test behind).

use crate::executor::{AttemptRequest, ExecOutcome, Executor, Running};
use crate::layout::StateDir;
use psy_model::events::RunSummary;
use psy_model::{
    AttemptResult, AttemptStatus, Capacity, CpuPolicy, RunEvent, RunId, TestResult, TestSpec,
    TestStatus,
};
use psy_scheduler::{Job, Limits, Scheduler};
use psy_store::{RunRecord, RunState, Store};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Everything a run needs besides its collaborators.
#[derive(Debug)]
pub struct RunSettings {
    pub run_id: RunId,
    pub project_dir: PathBuf,
    pub state: StateDir,
    pub tests: Vec<TestSpec>,
    pub capacity: Capacity,
    pub cpu_policy: CpuPolicy,
    pub limits: Limits,
    /// Overrides every test's `retries` (`--retries`).
    pub retries: Option<u32>,
    pub manifest: String,
    pub command_line: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("test {test}: {message}")]
    Unschedulable { test: String, message: String },
    #[error("recording results in the store: {0}")]
    Store(#[from] psy_store::StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug)]
struct InFlight {
    key: u64,
    test: usize,
    attempt: u32,
    handle: Box<dyn Running>,
    deadline: Instant,
    started_at_ms: u64,
    timed_out: bool,
    logs: (PathBuf, PathBuf),
    scratch: PathBuf,
}

/// Runs every test of `settings` and returns the summary. Each attempt is committed to `store`
/// before its event is emitted.
pub fn run(
    settings: RunSettings,
    store: &mut dyn Store,
    executor: &mut dyn Executor,
    emit: &mut dyn FnMut(&RunEvent),
) -> Result<RunSummary, RunError> {
    let RunSettings {
        run_id,
        project_dir,
        state,
        tests,
        capacity,
        cpu_policy,
        limits,
        retries,
        manifest,
        command_line,
    } = settings;
    let started = Instant::now();
    let started_at_ms = now_ms();
    let expected = store.expected_durations()?;
    let mut scheduler = Scheduler::new(capacity, cpu_policy, limits);
    for (i, t) in tests.iter().enumerate() {
        let job = Job {
            key: job_key(i, 1),
            resources: t.resources.clone(),
            expected: expected.get(&t.id).copied(),
        };
        scheduler.push(job).map_err(|e| RunError::Unschedulable {
            test: t.id.to_string(),
            message: e.to_string(),
        })?;
    }
    let host = hostname();
    store.begin_run(&RunRecord {
        run_id: run_id.clone(),
        started_at_ms,
        finished_at_ms: None,
        state: RunState::Running,
        manifest,
        command_line,
        host,
        summary: RunSummary {
            total: tests.len(),
            ..Default::default()
        },
    })?;
    let log_dir = state.run_logs(&run_id);
    std::fs::create_dir_all(&log_dir).map_err(io_err(format!("creating {}", log_dir.display())))?;
    let scratch_dir = state.run_scratch(&run_id);
    std::fs::create_dir_all(&scratch_dir)
        .map_err(io_err(format!("creating {}", scratch_dir.display())))?;

    emit(&RunEvent::RunStarted {
        run_id: run_id.clone(),
        total: tests.len(),
        started_at_ms,
    });
    for message in executor.warnings() {
        emit(&RunEvent::Warning { message });
    }

    let (signal_rx, signal_ids) = interrupt_pipe()?;
    let base_env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("PSY_"))
        .collect();
    let mut summary = RunSummary {
        total: tests.len(),
        ..Default::default()
    };
    let mut durations = vec![0u64; tests.len()];
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut interrupted = false;

    loop {
        if !interrupted {
            for placement in scheduler.next_placements(started.elapsed()) {
                let (test_idx, attempt) = split_key(placement.key);
                let test = &tests[test_idx];
                let (stdout_path, stderr_path) = state.attempt_logs(&run_id, &test.id, attempt);
                let scratch = state.attempt_scratch(&run_id, &test.id, attempt);
                let started_at_ms = now_ms();
                let started_at = Instant::now();
                let request = prepare_request(
                    &run_id,
                    test,
                    attempt,
                    placement.cores,
                    &base_env,
                    &stdout_path,
                    &stderr_path,
                    &scratch,
                    &project_dir,
                    placement.key,
                );
                emit(&RunEvent::AttemptStarted {
                    test_id: test.id.clone(),
                    attempt,
                    resources: test.resources.clone(),
                });
                match request.and_then(|r| executor.start(r)) {
                    Ok(handle) => in_flight.push(InFlight {
                        key: placement.key,
                        test: test_idx,
                        attempt,
                        handle,
                        deadline: started_at + test.timeout,
                        started_at_ms,
                        timed_out: false,
                        logs: (stdout_path, stderr_path),
                        scratch,
                    }),
                    Err(message) => {
                        let _ = scheduler.finished(placement.key);
                        let _ = std::fs::remove_dir_all(&scratch);
                        let outcome = ExecOutcome {
                            error: Some(message),
                            ..Default::default()
                        };
                        let result = attempt_result(
                            test,
                            attempt,
                            started_at_ms,
                            false,
                            outcome,
                            (stdout_path, stderr_path),
                        );
                        settle(
                            &run_id,
                            &tests,
                            test_idx,
                            result,
                            retries,
                            store,
                            &mut scheduler,
                            &mut summary,
                            &mut durations,
                            emit,
                        )?;
                    }
                }
            }
        }
        if in_flight.is_empty() {
            break;
        }

        let now = Instant::now();
        let next_deadline = in_flight
            .iter()
            .filter(|f| !f.timed_out)
            .map(|f| f.deadline)
            .min();
        let timeout_ms = next_deadline.map_or(-1, |d| {
            d.saturating_duration_since(now).as_millis().min(60_000) as i32 + 1
        });
        let mut fds: Vec<libc::pollfd> = std::iter::once(signal_rx.as_raw_fd())
            .chain(in_flight.iter().map(|f| f.handle.wait_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: fds is a valid array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(RunError::Io {
                what: "waiting for tests".into(),
                source: err,
            });
        }
        if fds[0].revents != 0 && !interrupted {
            interrupted = true;
            tracing::warn!("interrupted: killing {} running attempts", in_flight.len());
            for f in &mut in_flight {
                f.handle.kill();
            }
        }
        let now = Instant::now();
        for f in in_flight
            .iter_mut()
            .filter(|f| !f.timed_out && f.deadline <= now)
        {
            f.timed_out = true;
            f.handle.kill();
        }
        let ready_fds: Vec<RawFd> = fds[1..]
            .iter()
            .filter(|p| p.revents != 0)
            .map(|p| p.fd)
            .collect();
        let (ready, still): (Vec<InFlight>, Vec<InFlight>) = in_flight
            .drain(..)
            .partition(|f| ready_fds.contains(&f.handle.wait_fd()));
        in_flight = still;
        for f in ready {
            let _ = scheduler.finished(f.key);
            let outcome = f.handle.finish();
            let _ = std::fs::remove_dir_all(&f.scratch);
            let test = &tests[f.test];
            let result = attempt_result(
                test,
                f.attempt,
                f.started_at_ms,
                f.timed_out,
                outcome,
                f.logs,
            );
            if interrupted && !f.timed_out && result.status != AttemptStatus::Pass {
                // Killed by Ctrl-C: not a verdict on the test.
                continue;
            }
            settle(
                &run_id,
                &tests,
                f.test,
                result,
                retries,
                store,
                &mut scheduler,
                &mut summary,
                &mut durations,
                emit,
            )?;
        }
    }

    executor.close();
    for id in signal_ids {
        signal_hook::low_level::unregister(id);
    }
    let _ = std::fs::remove_dir_all(&scratch_dir);
    let finished = summary.passed
        + summary.failed
        + summary.flaky
        + summary.timed_out
        + summary.oom
        + summary.errors;
    summary.not_run = summary.total - finished;
    summary.duration_ms = started.elapsed().as_millis() as u64;
    store.finish_run(&run_id, &summary, now_ms())?;
    emit(&RunEvent::RunFinished {
        run_id,
        summary: summary.clone(),
    });
    Ok(summary)
}

/// Attempt numbers stay below this, so a key encodes (test index, attempt).
const MAX_ATTEMPTS: u64 = 1 << 16;

fn job_key(test: usize, attempt: u32) -> u64 {
    test as u64 * MAX_ATTEMPTS + u64::from(attempt)
}

fn split_key(key: u64) -> (usize, u32) {
    ((key / MAX_ATTEMPTS) as usize, (key % MAX_ATTEMPTS) as u32)
}

#[allow(clippy::too_many_arguments)]
fn prepare_request<'a>(
    run_id: &'a RunId,
    test: &'a TestSpec,
    attempt: u32,
    cores: Option<Vec<u32>>,
    base_env: &[(String, String)],
    stdout_path: &std::path::Path,
    stderr_path: &std::path::Path,
    scratch: &std::path::Path,
    project_dir: &std::path::Path,
    key: u64,
) -> Result<AttemptRequest<'a>, String> {
    let create = |p: &std::path::Path| {
        File::create(p).map_err(|e| format!("creating log file {}: {e}", p.display()))
    };
    std::fs::create_dir_all(scratch)
        .map_err(|e| format!("creating scratch directory {}: {e}", scratch.display()))?;
    let mut env: Vec<(String, String)> = base_env.to_vec();
    env.extend(test.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.push(("PSY_RUN_ID".into(), run_id.to_string()));
    env.push(("PSY_TEST_ID".into(), test.id.to_string()));
    env.push(("PSY_ATTEMPT".into(), attempt.to_string()));
    env.push((
        "PSY_VARIANT".into(),
        test.variant.clone().unwrap_or_default(),
    ));
    env.push(("PSY_SCRATCH".into(), scratch.display().to_string()));
    Ok(AttemptRequest {
        run_id,
        test,
        attempt,
        cores,
        env,
        stdout: create(stdout_path)?,
        stderr: create(stderr_path)?,
        scratch: scratch.to_path_buf(),
        project_dir: project_dir.to_path_buf(),
        key,
    })
}

fn attempt_result(
    test: &TestSpec,
    attempt: u32,
    started_at_ms: u64,
    timed_out: bool,
    outcome: ExecOutcome,
    (stdout_path, stderr_path): (PathBuf, PathBuf),
) -> AttemptResult {
    let status = if outcome.error.is_some() {
        AttemptStatus::Error
    } else if timed_out {
        AttemptStatus::Timeout
    } else if outcome.oom_killed && outcome.exit.code != Some(0) {
        AttemptStatus::Oom
    } else if outcome.exit.code == Some(0) {
        AttemptStatus::Pass
    } else {
        AttemptStatus::Fail
    };
    let message = match status {
        AttemptStatus::Timeout => Some(format!("timed out after {:?}", test.timeout)),
        AttemptStatus::Oom => Some(format!(
            "killed by the memory limit ({} bytes)",
            test.resources.memory_bytes
        )),
        _ => outcome.error,
    };
    AttemptResult {
        test_id: test.id.clone(),
        attempt,
        status,
        exit: outcome.exit,
        started_at_ms,
        duration_ms: outcome.wall_time.as_millis() as u64,
        cpu_time_ms: outcome.cpu_time.map(|d| d.as_millis() as u64),
        peak_memory_bytes: outcome.peak_memory_bytes,
        stdout_path,
        stderr_path,
        message,
    }
}

/// Records one finished attempt, then either queues a retry or settles the test's verdict.
#[allow(clippy::too_many_arguments)]
fn settle(
    run_id: &RunId,
    tests: &[TestSpec],
    test_idx: usize,
    result: AttemptResult,
    retries: Option<u32>,
    store: &mut dyn Store,
    scheduler: &mut Scheduler,
    summary: &mut RunSummary,
    durations: &mut [u64],
    emit: &mut dyn FnMut(&RunEvent),
) -> Result<(), RunError> {
    let test = &tests[test_idx];
    store.record_attempt(run_id, &result)?;
    durations[test_idx] += result.duration_ms;
    let attempt = result.attempt;
    let status = result.status;
    emit(&RunEvent::AttemptFinished { result });
    let allowed = 1 + retries.unwrap_or(test.retries);
    if status != AttemptStatus::Pass && attempt < allowed {
        emit(&RunEvent::AttemptRetrying {
            test_id: test.id.clone(),
            next_attempt: attempt + 1,
        });
        let job = Job {
            key: job_key(test_idx, attempt + 1),
            resources: test.resources.clone(),
            expected: None,
        };
        scheduler.push(job).map_err(|e| RunError::Unschedulable {
            test: test.id.to_string(),
            message: e.to_string(),
        })?;
        return Ok(());
    }
    let verdict = TestResult {
        test_id: test.id.clone(),
        status: TestStatus::from_last_attempt(status, attempt),
        attempts: attempt,
        duration_ms: durations[test_idx],
    };
    store.record_test(run_id, &verdict, &test.name, test.variant.as_deref())?;
    summary.count(verdict.status);
    emit(&RunEvent::TestFinished { result: verdict });
    Ok(())
}

/// A pipe that becomes readable on SIGINT/SIGTERM/SIGHUP, so the poll loop sees Ctrl-C.
fn interrupt_pipe() -> Result<(UnixStream, Vec<signal_hook::SigId>), RunError> {
    let (rx, tx) = UnixStream::pair().map_err(io_err("creating the interrupt pipe"))?;
    rx.set_nonblocking(true)
        .map_err(io_err("creating the interrupt pipe"))?;
    let mut ids = Vec::new();
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        let tx = tx
            .try_clone()
            .map_err(io_err("creating the interrupt pipe"))?;
        ids.push(
            signal_hook::low_level::pipe::register(sig, tx)
                .map_err(io_err("installing signal handlers"))?,
        );
    }
    Ok((rx, ids))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
