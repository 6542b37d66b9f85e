//! The hot path's cost and WAL behaviour: a reader (`psy show`) alongside a writer (`psy run`).

use super::{attempt, run, store};
use crate::{SqliteStore, Store};
use psy_model::AttemptStatus::Pass;
use psy_model::{RunId, TestId};
use std::sync::mpsc;
use std::time::Instant;

#[test]
fn records_2000_attempts_one_transaction_each() {
    let (_dir, mut s) = store();
    let r = RunId("bench".into());
    s.begin_run(&run(r.as_str(), 0)).unwrap();
    let attempts: Vec<_> = (0..2_000u64)
        .map(|i| attempt(&format!("suite/test-{i:04}"), 1, Pass, i, 3))
        .collect();
    let start = Instant::now();
    for a in &attempts {
        s.record_attempt(&r, a).unwrap();
        // Nothing left open: each attempt was its own committed transaction.
        assert!(s.conn.is_autocommit());
    }
    let elapsed = start.elapsed();
    println!(
        "recorded 2000 attempts, one transaction each, in {elapsed:?} ({:?} per attempt)",
        elapsed / 2_000
    );
    assert_eq!(s.attempts(&r).unwrap().len(), 2_000);
}

#[test]
fn an_open_reader_does_not_block_the_writer() {
    let (dir, mut writer) = store();
    let r = RunId("r".into());
    writer.begin_run(&run("r", 0)).unwrap();
    writer
        .record_attempt(&r, &attempt("a", 1, Pass, 1, 1))
        .unwrap();

    let reader = SqliteStore::open_project(dir.path()).unwrap();
    // A read transaction held open, as a slow `psy show` would: in rollback-journal mode the
    // writer's commit would wait for it until the busy timeout and fail.
    reader
        .conn
        .execute_batch("BEGIN; SELECT COUNT(*) FROM attempts;")
        .unwrap();
    writer
        .record_attempt(&r, &attempt("b", 1, Pass, 2, 1))
        .unwrap();
    assert_eq!(
        reader.attempts(&r).unwrap().len(),
        1,
        "the reader keeps its snapshot"
    );
    reader.conn.execute_batch("COMMIT").unwrap();
    assert_eq!(
        reader.attempts(&r).unwrap().len(),
        2,
        "a new read sees the commit"
    );
}

#[test]
fn reader_sees_every_commit_while_writer_writes() {
    const N: usize = 400;
    let (dir, mut writer) = store();
    let r = RunId("r".into());
    writer.begin_run(&run("r", 0)).unwrap();
    let reader = SqliteStore::open_project(dir.path()).unwrap();

    let (committed_tx, committed) = mpsc::channel::<usize>();
    let writer_thread = std::thread::spawn(move || {
        for i in 0..N {
            let a = attempt(
                &format!("t{:03}", i % 50),
                (i / 50 + 1) as u32,
                Pass,
                i as u64,
                1,
            );
            writer.record_attempt(&r, &a).unwrap();
            committed_tx.send(i + 1).unwrap();
        }
    });

    // The reader polls as fast as it can (racing the writer), checking every read is a
    // consistent prefix of the writes and never fails with "database is locked".
    let r = RunId("r".into());
    let mut last_seen = 0;
    let mut known_committed = 0;
    while last_seen < N {
        while let Ok(n) = committed.try_recv() {
            known_committed = n;
        }
        let seen = reader.attempts(&r).unwrap().len();
        assert!(
            seen >= last_seen,
            "reads went backwards: {seen} after {last_seen}"
        );
        assert!(
            seen >= known_committed,
            "a commit announced before the read is missing"
        );
        last_seen = seen;
        let history = reader.history(&TestId("t000".into()), 100).unwrap();
        assert!(history
            .windows(2)
            .all(|w| w[0].1.started_at_ms >= w[1].1.started_at_ms));
        assert_eq!(reader.runs(5).unwrap().len(), 1);
    }
    writer_thread.join().unwrap();
    assert_eq!(reader.attempts(&r).unwrap().len(), N);
}
