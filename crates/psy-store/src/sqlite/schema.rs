//! The schema and its forward-only migrations, versioned by `PRAGMA user_version`.
//!
//! Migration `i` (0-based) takes the database from version `i` to `i + 1`. Released migrations
//! are never edited: a change is a new entry at the end.

use crate::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// Every migration, oldest first.
pub(super) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// Version 1: runs, per-test verdicts and attempts.
///
/// `attempts` keeps its rowid so ties in `started_at_ms` break by insertion order. The history
/// index also carries `status` and `duration_ms` so `expected_durations` reads only the index.
const V1: &str = "
CREATE TABLE runs (
    run_id         TEXT PRIMARY KEY NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER,
    state          TEXT NOT NULL CHECK (state IN ('running', 'finished', 'aborted', 'interrupted')),
    manifest       TEXT NOT NULL,
    command_line   TEXT NOT NULL,
    host           TEXT NOT NULL,
    total          INTEGER NOT NULL DEFAULT 0,
    passed         INTEGER NOT NULL DEFAULT 0,
    failed         INTEGER NOT NULL DEFAULT 0,
    flaky          INTEGER NOT NULL DEFAULT 0,
    timed_out      INTEGER NOT NULL DEFAULT 0,
    oom            INTEGER NOT NULL DEFAULT 0,
    errors         INTEGER NOT NULL DEFAULT 0,
    not_run        INTEGER NOT NULL DEFAULT 0,
    duration_ms    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_start ON runs (started_at_ms DESC);
CREATE INDEX runs_by_state ON runs (state);

CREATE TABLE tests (
    run_id      TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    test_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    variant     TEXT,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, test_id)
) WITHOUT ROWID;

CREATE TABLE attempts (
    run_id            TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    test_id           TEXT NOT NULL,
    attempt           INTEGER NOT NULL,
    status            TEXT NOT NULL,
    exit_code         INTEGER,
    signal            INTEGER,
    started_at_ms     INTEGER NOT NULL,
    duration_ms       INTEGER NOT NULL,
    cpu_time_ms       INTEGER,
    peak_memory_bytes INTEGER,
    io_read_bytes     INTEGER,
    io_write_bytes    INTEGER,
    stdout_path       TEXT NOT NULL,
    stderr_path       TEXT NOT NULL,
    message           TEXT,
    UNIQUE (run_id, test_id, attempt)
);
CREATE INDEX attempts_history ON attempts (test_id, started_at_ms DESC, status, duration_ms);
";

/// Version 2: IO requests, and bytes sent and received on the test's own network interface.
const V2: &str = "
ALTER TABLE attempts ADD COLUMN io_read_ops INTEGER;
ALTER TABLE attempts ADD COLUMN io_write_ops INTEGER;
ALTER TABLE attempts ADD COLUMN net_sent_bytes INTEGER;
ALTER TABLE attempts ADD COLUMN net_received_bytes INTEGER;
";

/// Version 3: why a run ended as it did, when its state alone does not say (a full disk).
const V3: &str = "ALTER TABLE runs ADD COLUMN note TEXT;";

/// Version 4: tests their own runner did not run (`#[ignore]`, `pytest.skip`).
const V4: &str = "ALTER TABLE runs ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;";
/// Version 5: durations imported from another machine (`psy import`), used for tests this
/// store has no pass/fail attempts of.
const V5: &str = "
CREATE TABLE imported_durations (
    test_id     TEXT PRIMARY KEY NOT NULL,
    duration_us INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Version 6: the image each attempt ran in (`image = "..."`; NULL: the host's root).
const V6: &str = "ALTER TABLE attempts ADD COLUMN image TEXT;";

/// Brings the database up to `migrations.len()`, each step in its own transaction.
///
/// An up-to-date database is only read, so `psy show` never queues behind a run's writes. A
/// step runs under `BEGIN IMMEDIATE`, which takes the write lock before re-reading the
/// version, so two psy processes opening a fresh database at once cannot both apply it.
pub(super) fn migrate(
    conn: &mut Connection,
    database: &str,
    migrations: &[&str],
) -> Result<(), StoreError> {
    let supported = migrations.len() as u32;
    let read_err = |source: rusqlite::Error| StoreError::Query {
        database: database.to_string(),
        op: "reading the schema version".to_string(),
        source: source.into(),
    };
    let too_new = |found: u32| StoreError::SchemaTooNew {
        database: database.to_string(),
        found,
        supported,
    };
    let current = user_version(conn).map_err(read_err)?;
    if current > supported {
        return Err(too_new(current));
    }
    if current == supported {
        return Ok(());
    }
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(read_err)?;
        let version = user_version(&tx).map_err(read_err)?;
        if version > supported {
            return Err(too_new(version));
        }
        if version == supported {
            return Ok(());
        }
        let step_err = |source: rusqlite::Error| StoreError::Migrate {
            database: database.to_string(),
            from: version,
            to: version + 1,
            source: source.into(),
        };
        tracing::info!(
            database,
            from = version,
            to = version + 1,
            "migrating results database"
        );
        tx.execute_batch(migrations[version as usize])
            .map_err(step_err)?;
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(step_err)?;
        tx.commit().map_err(step_err)?;
    }
}

fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteStore, Store};

    #[test]
    fn fresh_database_gets_every_table_and_reopen_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/psyduck.db");
        let mut store = SqliteStore::open(&path).unwrap();
        assert_eq!(user_version(&store.conn).unwrap(), MIGRATIONS.len() as u32);
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let run = crate::sqlite::tests::run("r1", 1_000);
        store.begin_run(&run).unwrap();
        drop(store);

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(user_version(&store.conn).unwrap(), MIGRATIONS.len() as u32);
        assert_eq!(store.runs(10).unwrap(), vec![run]);
    }

    #[test]
    fn later_migrations_apply_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut conn = Connection::open(&path).unwrap();
        migrate(&mut conn, "db", &["CREATE TABLE a (x INTEGER);"]).unwrap();
        conn.execute("INSERT INTO a VALUES (7)", []).unwrap();
        let two = [
            "CREATE TABLE a (x INTEGER);",
            "ALTER TABLE a ADD COLUMN y INTEGER DEFAULT 3;",
        ];
        migrate(&mut conn, "db", &two).unwrap();
        // Re-running is a no-op: the first step would fail if it ran again.
        migrate(&mut conn, "db", &two).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 2);
        let row: (i64, i64) = conn
            .query_row("SELECT x, y FROM a", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(row, (7, 3));
    }

    #[test]
    fn failed_migration_rolls_back_and_names_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("db")).unwrap();
        let err = migrate(&mut conn, "db", &["CREATE TABLE a (x);", "NOT SQL"]).unwrap_err();
        assert!(
            matches!(err, StoreError::Migrate { from: 1, to: 2, .. }),
            "{err:?}"
        );
        assert_eq!(user_version(&conn).unwrap(), 1);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("psyduck.db");
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn a_version_1_database_keeps_its_attempts_and_gains_the_later_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("psyduck.db");
        let mut store = SqliteStore::open(&path).unwrap();
        let run = crate::sqlite::tests::run("r1", 1_000);
        store.begin_run(&run).unwrap();
        let mut old =
            crate::sqlite::tests::attempt("t", 1, psy_model::AttemptStatus::Pass, 1_000, 5);
        old.io_read_ops = None;
        old.io_write_ops = None;
        old.net_sent_bytes = None;
        old.net_received_bytes = None;
        old.image = None;
        store.record_attempt(&run.run_id, &old).unwrap();
        // Turn it back into what a psy of schema version 1 left behind.
        store
            .conn
            .execute_batch(
                "ALTER TABLE attempts DROP COLUMN io_read_ops;
                 ALTER TABLE attempts DROP COLUMN io_write_ops;
                 ALTER TABLE attempts DROP COLUMN net_sent_bytes;
                 ALTER TABLE attempts DROP COLUMN net_received_bytes;
                 ALTER TABLE runs DROP COLUMN note;
                 ALTER TABLE runs DROP COLUMN skipped;
                 DROP TABLE imported_durations;
                 ALTER TABLE attempts DROP COLUMN image;
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        drop(store);

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(user_version(&store.conn).unwrap(), MIGRATIONS.len() as u32);
        assert_eq!(store.attempts(&run.run_id).unwrap(), vec![old]);
        assert_eq!(store.runs(10).unwrap(), vec![run]);
    }
}
