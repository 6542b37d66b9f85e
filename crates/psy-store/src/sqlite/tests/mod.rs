//! Tests of the SQLite store: the shared conformance suite, and what only SQLite does (its
//! file, WAL readers, crashes, corrupted rows).

mod concurrency;
mod crash;
mod queries;

pub(super) use crate::conformance::{attempt, run};
use crate::conformance::{conformance_tests, Fixture};
use crate::SqliteStore;
use tempfile::TempDir;

/// A fresh store in a temporary project directory (kept alive by the returned guard).
pub(super) fn store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_project(dir.path()).unwrap();
    (dir, store)
}

/// The conformance suite on SQLite.
mod conformance {
    use super::*;

    conformance_tests!(|| {
        let (dir, store) = store();
        Some(Fixture {
            store: Box::new(store),
            _guard: Box::new(dir),
        })
    });
}
