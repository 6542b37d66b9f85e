//! `psy submit --wait`: follows a server run by polling it, turning what changed into the same
//! run events `psy run` emits, so its reporters (human, JSON, JUnit) and exit codes apply.
//!
//! Each poll asks only for the jobs changed since the previous one (`/api/runs/{id}/changes`
//! with the cursor of the previous answer), so following a run of 20,000 tests does not move
//! every job at every poll. The server keeps each job's latest result, so a test that needed retries shows its last
//! attempt (a pass after failures is `flaky`, as locally). A server that cannot be reached for
//! a while (a restart) is polled again with backoff.

use super::client::failed;
use super::remote_logs::RemoteLogs;
use anyhow::Context;
use psy_fleet::{FleetClient, FleetError, JobView, RunDetail};
use psy_model::events::RunSummary;
use psy_model::{
    AttemptResult, AttemptStatus, ExitInfo, Resources, RunEvent, RunId, TestId, TestResult,
    TestStatus,
};
use psy_report::Reporter;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Between two polls of a running run.
const POLL: Duration = Duration::from_millis(500);
/// Between two polls of a run with no job queued (its end is near: every job is running or
/// done), so that `--wait` ends soon after the run does.
const POLL_NEAR_END: Duration = Duration::from_millis(100);
/// How long the server may stay unreachable before `--wait` gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// What was already reported of a run.
struct Seen {
    started: HashSet<(String, i32)>,
    finished: HashSet<String>,
    summary: RunSummary,
}

/// Follows run `run_id` until it is done or cancelled, emitting events to `reporters`; the
/// run's summary (tests cancelled before a result count as not run).
pub(crate) fn follow(
    client: &FleetClient,
    run_id: i64,
    resources: &HashMap<String, Resources>,
    logs: &RemoteLogs,
    reporters: &mut dyn Reporter,
) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    let id = RunId(run_id.to_string());
    let mut seen = Seen {
        started: HashSet::new(),
        finished: HashSet::new(),
        summary: RunSummary {
            total: resources.len(),
            ..RunSummary::default()
        },
    };
    reporters.on_event(&RunEvent::RunStarted {
        run_id: id.clone(),
        total: resources.len(),
        started_at_ms: now_ms(),
        expected_ms: None,
    })?;
    let mut unreachable_since: Option<Instant> = None;
    let mut backoff = psy_fleet::retry::default_backoff();
    let mut poll = Poll::default();
    loop {
        let detail = match poll.next(client, run_id) {
            Ok(detail) => {
                unreachable_since = None;
                backoff.reset();
                detail
            }
            // Unreachable, or 503 (its database is down or restarting).
            Err(e) if e.is_transient() => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > GIVE_UP_AFTER {
                    return Err(failed(e));
                }
                let pause = backoff.next_pause();
                tracing::warn!(error = %e, "the server did not answer; asking again in {} ms", pause.as_millis());
                std::thread::sleep(pause);
                continue;
            }
            Err(e) => return Err(failed(e)),
        };
        for job in &detail.jobs {
            report_job(job, resources, logs, &mut seen, reporters)?;
        }
        if detail.run.is_finished() {
            break;
        }
        std::thread::sleep(if detail.run.jobs.queued == 0 {
            POLL_NEAR_END
        } else {
            POLL
        });
    }
    let mut summary = seen.summary;
    summary.not_run = summary.total.saturating_sub(seen.finished.len());
    summary.duration_ms = started.elapsed().as_millis() as u64;
    reporters.on_event(&RunEvent::RunFinished {
        run_id: id,
        summary: summary.clone(),
    })?;
    Ok(summary)
}

/// How `--wait` asks for a run: only the jobs changed since its last look (a cursor), or,
/// from a server without `/changes` (older than schema version 8), the whole run each time.
#[derive(Debug, Default)]
struct Poll {
    cursor: Option<String>,
    whole_runs: bool,
}

impl Poll {
    fn next(&mut self, client: &FleetClient, run_id: i64) -> Result<RunDetail, FleetError> {
        if self.whole_runs {
            return client.run(run_id);
        }
        match client.run_changes(run_id, self.cursor.as_deref()) {
            Ok(changes) => {
                self.cursor = Some(changes.cursor);
                Ok(RunDetail {
                    run: changes.run,
                    jobs: changes.jobs,
                })
            }
            Err(e) if e.status() == Some(404) && self.cursor.is_none() => {
                tracing::info!("the server has no /changes ({e}): polling whole runs");
                self.whole_runs = true;
                client.run(run_id)
            }
            Err(e) => Err(e),
        }
    }
}

/// Emits what is new about `job`: its attempt starting, its result and verdict.
fn report_job(
    job: &JobView,
    resources: &HashMap<String, Resources>,
    logs: &RemoteLogs,
    seen: &mut Seen,
    reporters: &mut dyn Reporter,
) -> anyhow::Result<()> {
    if seen.finished.contains(&job.test_id) {
        return Ok(());
    }
    let test_id = TestId(job.test_id.clone());
    let mut start = |attempt: i32, reporters: &mut dyn Reporter| -> anyhow::Result<()> {
        if seen.started.insert((job.test_id.clone(), attempt)) {
            reporters.on_event(&RunEvent::AttemptStarted {
                test_id: test_id.clone(),
                attempt: attempt.max(1) as u32,
                resources: resources.get(&job.test_id).cloned().unwrap_or_default(),
                privileged: false,
            })?;
        }
        Ok(())
    };
    match job.state.as_str() {
        "leased" => start(job.attempt, reporters),
        "done" => {
            let Some(result) = &job.result else {
                return Ok(());
            };
            start(result.attempt, reporters)?;
            let status: AttemptStatus = result.status.parse().unwrap_or(AttemptStatus::Error);
            let attempt = result.attempt.max(1) as u32;
            if let Some(output) = result.output.as_deref().filter(|o| !o.is_empty()) {
                logs.put(&test_id, attempt, output)
                    .context("keeping a test's output for the report")?;
            }
            reporters.on_event(&RunEvent::AttemptFinished {
                result: AttemptResult {
                    test_id: test_id.clone(),
                    attempt,
                    status,
                    exit: ExitInfo {
                        code: result.exit_code,
                        signal: result.signal,
                    },
                    started_at_ms: 0,
                    duration_ms: result.duration_ms.max(0) as u64,
                    cpu_time_ms: None,
                    peak_memory_bytes: None,
                    io_read_bytes: None,
                    io_write_bytes: None,
                    io_read_ops: None,
                    io_write_ops: None,
                    net_sent_bytes: None,
                    net_received_bytes: None,
                    image: None,
                    stdout_path: Default::default(),
                    stderr_path: Default::default(),
                    message: None,
                },
            })?;
            let verdict = TestStatus::from_last_attempt(status, attempt);
            seen.summary.count(verdict);
            seen.finished.insert(job.test_id.clone());
            reporters.on_event(&RunEvent::TestFinished {
                result: TestResult {
                    test_id,
                    status: verdict,
                    attempts: attempt,
                    duration_ms: result.duration_ms.max(0) as u64,
                },
            })?;
            Ok(())
        }
        _ => Ok(()),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
