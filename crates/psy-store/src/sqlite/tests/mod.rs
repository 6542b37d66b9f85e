//! Tests of the SQLite store through the [`Store`] trait, and the fixtures they share.

mod concurrency;
mod crash;
mod queries;

use crate::{RunRecord, SqliteStore, Store};
use psy_model::{AttemptResult, AttemptStatus, ExitInfo, RunId, TestId};
use std::path::PathBuf;
use tempfile::TempDir;

/// A fresh store in a temporary project directory (kept alive by the returned guard).
pub(super) fn store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_project(dir.path()).unwrap();
    (dir, store)
}

pub(super) fn run(id: &str, started_at_ms: u64) -> RunRecord {
    RunRecord::running(
        RunId(id.into()),
        started_at_ms,
        "psyduck.toml",
        "psy run",
        "host-a",
        3,
    )
}

pub(super) fn attempt(
    test: &str,
    attempt: u32,
    status: AttemptStatus,
    started_at_ms: u64,
    duration_ms: u64,
) -> AttemptResult {
    let stem = format!("{test}.{attempt}");
    AttemptResult {
        test_id: TestId(test.into()),
        attempt,
        status,
        exit: ExitInfo {
            code: Some(i32::from(status != AttemptStatus::Pass)),
            signal: None,
        },
        started_at_ms,
        duration_ms,
        cpu_time_ms: Some(duration_ms / 2),
        peak_memory_bytes: Some(1 << 20),
        io_read_bytes: Some(4096),
        io_write_bytes: Some(1 << 20),
        io_read_ops: Some(3),
        io_write_ops: Some(256),
        net_sent_bytes: Some(3000),
        net_received_bytes: Some(4000),
        stdout_path: PathBuf::from(format!("/logs/{stem}.out")),
        stderr_path: PathBuf::from(format!("/logs/{stem}.err")),
        message: None,
    }
}

/// Records the given outcomes as consecutive attempts of `test`, one run each, oldest first.
pub(super) fn record_series(
    store: &mut SqliteStore,
    test: &str,
    statuses_and_durations: &[(AttemptStatus, u64)],
) {
    for (i, &(status, duration)) in statuses_and_durations.iter().enumerate() {
        let run_id = RunId(format!("{test}-run-{i:03}"));
        let started = 1_000 * (i as u64 + 1);
        store.begin_run(&run(run_id.as_str(), started)).unwrap();
        store
            .record_attempt(&run_id, &attempt(test, 1, status, started, duration))
            .unwrap();
    }
}
