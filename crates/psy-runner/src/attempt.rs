//! One attempt's bookkeeping: the request handed to the executor, and how an
//! executor's outcome becomes an [`AttemptResult`].

use crate::executor::{AttemptRequest, ExecOutcome};
use psy_model::{
    AttemptKey, AttemptResult, AttemptStatus, LogStore, LogStream, RunId, TestId, TestSpec,
};
use psy_scheduler::Placement;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Where one attempt's files go.
#[derive(Debug, Clone)]
pub(crate) struct AttemptPaths {
    /// The address of its logs.
    pub(crate) key: AttemptKey,
    /// Where its logs are (kept in its result, read by its adapter).
    pub(crate) stdout: PathBuf,
    pub(crate) stderr: PathBuf,
    pub(crate) scratch: PathBuf,
}

impl AttemptPaths {
    pub(crate) fn new(logs: &dyn LogStore, key: AttemptKey, scratch: PathBuf) -> Self {
        AttemptPaths {
            stdout: logs.location(&key, LogStream::Stdout),
            stderr: logs.location(&key, LogStream::Stderr),
            key,
            scratch,
        }
    }
}

/// The test's environment: psy's own (minus `PSY_*`), the test's, then the `PSY_*` variables
/// and its adapter's; a later one replaces an earlier one of the same name (a process's
/// `getenv` would find the first of two).
pub(crate) fn attempt_env(
    base_env: &[(String, String)],
    run_id: &RunId,
    test: &TestSpec,
    attempt: u32,
    scratch: &Path,
) -> Vec<(String, String)> {
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
    env.extend(crate::adapter::env(test, run_id, attempt));
    last_wins(env)
}

/// One entry per name, in the order names first appear, each with its last value.
fn last_wins(env: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out: Vec<(String, String)> = Vec::with_capacity(env.len());
    for (name, value) in env {
        match index.get(&name) {
            Some(&i) => out[i].1 = value,
            None => {
                index.insert(name.clone(), out.len());
                out.push((name, value));
            }
        }
    }
    out
}

/// The writers of the attempt's two streams (finish both when it ends, made or not).
pub(crate) fn open_logs(logs: &dyn LogStore, paths: &AttemptPaths) -> Result<(File, File), String> {
    let open = |stream: LogStream, path: &Path| {
        logs.writer(&paths.key, stream)
            .map_err(|e| format!("creating log file {}: {e}", path.display()))
    };
    Ok((
        open(LogStream::Stdout, &paths.stdout)?,
        open(LogStream::Stderr, &paths.stderr)?,
    ))
}

/// Assembles the request (the scratch dir and the log files exist).
#[allow(clippy::too_many_arguments)]
pub(crate) fn request<'a>(
    run_id: &'a RunId,
    test: &'a TestSpec,
    record_as: &'a TestId,
    attempt: u32,
    placement: Placement,
    env: Vec<(String, String)>,
    (stdout, stderr): (File, File),
    scratch: &Path,
    project_dir: &Path,
    stdout_path: &Path,
) -> AttemptRequest<'a> {
    AttemptRequest {
        run_id,
        test,
        record_as,
        attempt,
        cores: placement.cores,
        argv: crate::adapter::command(test, scratch),
        env,
        stdout,
        stderr,
        scratch: scratch.to_path_buf(),
        project_dir: project_dir.to_path_buf(),
        key: placement.key,
        stdout_path: stdout_path.to_path_buf(),
    }
}

/// The verdict on one attempt: set-up errors first, then timeouts, then OOM kills, then what
/// the test's own runner reported (read before the scratch directory is emptied), then the
/// exit status.
pub(crate) fn result(
    test: &TestSpec,
    attempt: u32,
    started_at_ms: u64,
    timed_out: bool,
    outcome: ExecOutcome,
    paths: AttemptPaths,
) -> AttemptResult {
    let status = if outcome.error.is_some() {
        AttemptStatus::Error
    } else if timed_out {
        AttemptStatus::Timeout
    } else if outcome.oom_killed && outcome.exit.code != Some(0) {
        AttemptStatus::Oom
    } else if outcome.failure.is_some() {
        AttemptStatus::Fail
    } else if outcome.exit.code == Some(0) {
        AttemptStatus::Pass
    } else {
        AttemptStatus::Fail
    };
    let adapter = match (status, outcome.exit.code) {
        (AttemptStatus::Pass | AttemptStatus::Fail, Some(code)) => {
            crate::adapter::verdict(test, code, &paths.stdout, &paths.scratch)
        }
        _ => None,
    };
    let (status, outcome) = match adapter {
        Some(verdict) => (
            verdict.status,
            ExecOutcome {
                error: verdict.message,
                ..outcome
            },
        ),
        None => (status, outcome),
    };
    let message = match status {
        AttemptStatus::Timeout => Some(format!("timed out after {:?}", test.timeout)),
        AttemptStatus::Oom => Some(format!(
            "killed by the memory limit ({} bytes)",
            test.resources.memory_bytes
        )),
        _ => outcome.error.or(outcome.failure),
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
        io_read_bytes: outcome.io_read_bytes,
        io_write_bytes: outcome.io_write_bytes,
        io_read_ops: outcome.io_read_ops,
        io_write_ops: outcome.io_write_ops,
        net_sent_bytes: outcome.network_bytes.map(|(sent, _)| sent),
        net_received_bytes: outcome.network_bytes.map(|(_, received)| received),
        image: outcome.image,
        stdout_path: paths.stdout,
        stderr_path: paths.stderr,
        message,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use psy_model::{ExitInfo, Resources, TestId};
    use std::time::Duration;

    pub(crate) fn spec() -> TestSpec {
        TestSpec {
            id: TestId("t".into()),
            name: "t".into(),
            variant: None,
            command: vec!["true".into()],
            cwd: "/".into(),
            env: Default::default(),
            timeout: Duration::from_secs(1),
            retries: 0,
            resources: Resources::default(),
            tags: vec![],
            origin: "x".into(),
            volumes: Vec::new(),
            sandbox: Default::default(),
            group: None,
            adapter: None,
            labels: Default::default(),
            nodes: Vec::new(),
            warm: None,
        }
    }

    fn status(timed_out: bool, outcome: ExecOutcome) -> AttemptStatus {
        let paths = paths();
        result(&spec(), 1, 0, timed_out, outcome, paths).status
    }

    pub(crate) fn paths() -> AttemptPaths {
        AttemptPaths {
            key: AttemptKey {
                run_id: RunId("r".into()),
                test_id: TestId("t".into()),
                attempt: 1,
            },
            stdout: "o".into(),
            stderr: "e".into(),
            scratch: "s".into(),
        }
    }

    fn exited(code: i32) -> ExitInfo {
        ExitInfo {
            code: Some(code),
            signal: None,
        }
    }

    #[test]
    fn verdict_precedence() {
        let killed = ExitInfo {
            code: None,
            signal: Some(9),
        };
        assert_eq!(
            status(
                false,
                ExecOutcome {
                    exit: exited(0),
                    ..Default::default()
                }
            ),
            AttemptStatus::Pass
        );
        assert_eq!(
            status(
                false,
                ExecOutcome {
                    exit: exited(3),
                    ..Default::default()
                }
            ),
            AttemptStatus::Fail
        );
        assert_eq!(
            status(
                true,
                ExecOutcome {
                    exit: killed,
                    ..Default::default()
                }
            ),
            AttemptStatus::Timeout
        );
        let oom = ExecOutcome {
            exit: killed,
            oom_killed: true,
            ..Default::default()
        };
        assert_eq!(status(false, oom), AttemptStatus::Oom);
        // A test that survived an OOM kill of a child and still exited 0 passed.
        let survived = ExecOutcome {
            exit: exited(0),
            oom_killed: true,
            ..Default::default()
        };
        assert_eq!(status(false, survived), AttemptStatus::Pass);
        let error = ExecOutcome {
            error: Some("command not found".into()),
            ..Default::default()
        };
        assert_eq!(status(true, error), AttemptStatus::Error);
    }

    #[test]
    fn the_tests_environment_wins_over_psys() {
        let mut test = spec();
        test.env.insert("CARGO_PKG_NAME".into(), "mine".into());
        let base = [
            ("CARGO_PKG_NAME".to_string(), "psy-cli".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let env = attempt_env(&base, &RunId("r".into()), &test, 1, Path::new("/s"));
        let values: Vec<&str> = env
            .iter()
            .filter(|(k, _)| k == "CARGO_PKG_NAME")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(values, ["mine"]);
        assert_eq!(env[1], ("HOME".to_string(), "/root".to_string()));
    }
}
