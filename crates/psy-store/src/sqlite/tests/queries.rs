//! What only the SQLite store shows: errors naming its file, corrupted rows, full disks.

use super::{attempt, run, store};
use crate::conformance::id;
use crate::{RunState, Store, StoreError};
use psy_model::events::RunSummary;
use psy_model::AttemptStatus::Pass;

#[test]
fn errors_name_the_database_and_the_operation() {
    let (dir, mut s) = store();
    s.begin_run(&run("r", 1)).unwrap();
    let a = attempt("foo", 2, Pass, 1, 1);
    s.record_attempt(&id("r"), &a).unwrap();
    let err = s.record_attempt(&id("r"), &a).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("recording attempt 2 of test foo in run r"),
        "{msg}"
    );
    assert!(
        msg.contains(&dir.path().join(".psyduck/psyduck.db").display().to_string()),
        "{msg}"
    );
    assert!(
        std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("UNIQUE"),
        "{err:?}"
    );

    let orphan = s.record_attempt(&id("no-such-run"), &a).unwrap_err();
    assert!(matches!(orphan, StoreError::Query { .. }), "{orphan:?}");
    let unknown = s
        .finish_run(
            &id("no-such-run"),
            &RunSummary::default(),
            5,
            RunState::Finished,
        )
        .unwrap_err();
    assert!(
        matches!(unknown, StoreError::UnknownRun { .. }),
        "{unknown:?}"
    );
}

#[test]
fn corrupted_values_are_reported_not_guessed() {
    let (_dir, mut s) = store();
    s.begin_run(&run("r", 1)).unwrap();
    s.record_attempt(&id("r"), &attempt("t", 1, Pass, 1, 1))
        .unwrap();
    s.conn
        .execute("UPDATE attempts SET status = 'maybe'", [])
        .unwrap();
    match s.attempts(&id("r")).unwrap_err() {
        StoreError::InvalidValue { column, value, .. } => {
            assert_eq!((column, value.as_str()), ("attempts.status", "\"maybe\""))
        }
        other => panic!("expected an invalid value, got {other:?}"),
    }
}

#[test]
fn full_disks_are_told_apart() {
    let full =
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None);
    let query = |source: crate::error::BackendError| StoreError::Query {
        database: "db".into(),
        op: "x".into(),
        source,
    };
    assert!(query(full.into()).is_disk_full());
    let enospc = std::io::Error::from_raw_os_error(28);
    assert!(query(enospc.into()).is_disk_full());
    let busy =
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
    assert!(!query(busy.into()).is_disk_full());
}
