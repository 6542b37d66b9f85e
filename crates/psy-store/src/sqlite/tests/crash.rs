//! A psy killed by SIGKILL loses no committed attempt, and the next start marks its run
//! aborted. The writer is this test binary re-executed with [`CHILD_ENV`] set, running only
//! [`crash_child_records_until_killed`].

use super::attempt;
use crate::{RunRecord, RunState, SqliteStore, Store};
use psy_model::AttemptStatus::{Fail, Pass};
use psy_model::{AttemptResult, RunId};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// Path of the database the child writes to; unset in a normal test run.
const CHILD_ENV: &str = "PSY_STORE_CRASH_CHILD_DB";
const RUN: &str = "crashing-run";
/// Attempts the parent waits to see acknowledged before killing the child.
const KILL_AFTER: usize = 200;
/// SIGKILL's number on every Linux architecture (spares a libc dependency for one constant).
const SIGKILL: i32 = 9;

fn nth_attempt(i: usize) -> AttemptResult {
    let status = if i % 7 == 6 { Fail } else { Pass };
    attempt(
        &format!("t{i:06}"),
        1,
        status,
        1_000 + i as u64,
        (i % 13) as u64,
    )
}

/// The child side: records attempts forever, printing each index after it is committed.
/// Without [`CHILD_ENV`] it does nothing (and passes) so a plain `cargo test` skips it.
#[test]
fn crash_child_records_until_killed() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let mut store = SqliteStore::open(path.as_ref()).unwrap();
    let run_id = RunId(RUN.into());
    store
        .begin_run(&RunRecord::running(
            run_id.clone(),
            1_000,
            "m",
            "psy run",
            "h",
            0,
        ))
        .unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0..1_000_000 {
        store.record_attempt(&run_id, &nth_attempt(i)).unwrap();
        writeln!(out, "committed {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_loses_no_committed_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".psyduck/psyduck.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sqlite::tests::crash::crash_child_records_until_killed",
        ])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut acknowledged = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(i) = line.unwrap().strip_prefix("committed ") {
            acknowledged = i.parse::<usize>().unwrap() + 1;
            if acknowledged >= KILL_AFTER {
                break;
            }
        }
    }
    // The child keeps writing while we get here, so the kill lands mid-stream.
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(SIGKILL)
    );
    assert_eq!(
        acknowledged, KILL_AFTER,
        "the child stopped before writing enough"
    );

    let mut store = SqliteStore::open(&path).unwrap();
    let run_id = RunId(RUN.into());
    let stored = store.attempts(&run_id).unwrap();
    assert!(
        stored.len() >= acknowledged,
        "{} stored < {acknowledged} committed",
        stored.len()
    );
    // Ordered by test id = by index: every acknowledged attempt is there, intact.
    for (i, a) in stored.iter().enumerate().take(acknowledged) {
        assert_eq!(a, &nth_attempt(i));
    }
    assert_eq!(store.run(RUN).unwrap().unwrap().state, RunState::Running);

    assert_eq!(store.abort_unfinished_runs().unwrap(), 1);
    let run = store.run(RUN).unwrap().unwrap();
    assert_eq!(run.state, RunState::Aborted);
    assert!(run.finished_at_ms.is_some());
}
