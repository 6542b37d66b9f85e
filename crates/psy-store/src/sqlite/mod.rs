//! The embedded SQLite implementation of [`Store`]: one file per project, WAL journal so
//! `psy show` reads while `psy run` writes, one small transaction per attempt.
//!
//! Everything SQLite-specific (pragmas, SQL dialect, value encodings) stays in this module.

mod convert;
mod durations;
mod read;
mod schema;
mod write;

use crate::{RunRecord, Store, StoreError};
use psy_model::events::RunSummary;
use psy_model::{AttemptResult, RunId, TestId, TestResult};
use rusqlite::Connection;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Directory under the project root holding Psyduck's state.
pub const STATE_DIR: &str = ".psyduck";
/// File name of the results database inside [`STATE_DIR`].
pub const DB_FILE: &str = "psyduck.db";

/// How long a statement waits for another connection's lock (a checkpoint, another writer)
/// before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection; covers every statement of the hot path and of
/// `psy show` with room to spare.
const STATEMENT_CACHE: usize = 32;

/// A results database in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// `path` rendered once for error messages.
    database: String,
}

impl SqliteStore {
    /// Where a project's database lives: `<project>/.psyduck/psyduck.db`.
    pub fn project_path(project: &Path) -> PathBuf {
        project.join(STATE_DIR).join(DB_FILE)
    }

    /// Opens (creating it and its directory if needed) the database of a project.
    pub fn open_project(project: &Path) -> Result<Self, StoreError> {
        Self::open(&Self::project_path(project))
    }

    /// Opens the database at `path`, creating the file and its parent directories if needed,
    /// and migrates its schema to the current version.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        let database = path.display().to_string();
        let open_err = |source: rusqlite::Error| StoreError::Open {
            database: database.clone(),
            source: source.into(),
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        schema::migrate(&mut conn, &database, schema::MIGRATIONS)?;
        tracing::debug!(database = %database, "opened results database");
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
            database,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn query_error(&self, op: String, source: rusqlite::Error) -> StoreError {
        StoreError::Query {
            database: self.database.clone(),
            op,
            source: source.into(),
        }
    }

    fn invalid(&self, op: String, bad: crate::columns::Invalid) -> StoreError {
        StoreError::InvalidValue {
            database: self.database.clone(),
            op,
            column: bad.column,
            value: bad.value,
        }
    }
}

/// Per-connection settings. `busy_timeout` comes first so the others wait out a concurrent
/// opener instead of failing.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // WAL: readers never block the writer nor see a half-written attempt. With NORMAL, a commit
    // is in the WAL file (and so survives the process being killed) before it returns; only an
    // OS crash or power loss can lose the last commits, which is acceptable for test results.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(journal_mode = %mode, "results database is not in WAL mode; readers may block the run");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

impl Store for SqliteStore {
    fn begin_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        self.insert_run(run)
    }

    fn record_attempt(&mut self, run_id: &RunId, result: &AttemptResult) -> Result<(), StoreError> {
        self.insert_attempt(run_id, result)
    }

    fn record_test(
        &mut self,
        run_id: &RunId,
        result: &TestResult,
        name: &str,
        variant: Option<&str>,
    ) -> Result<(), StoreError> {
        self.insert_test(run_id, result, name, variant)
    }

    fn finish_run(
        &mut self,
        run_id: &RunId,
        summary: &RunSummary,
        finished_at_ms: u64,
        state: crate::RunState,
    ) -> Result<(), StoreError> {
        self.update_finished(run_id, summary, finished_at_ms, state)
    }

    fn note_run(&mut self, run_id: &RunId, note: &str) -> Result<(), StoreError> {
        self.update_note(run_id, note)
    }

    fn expected_durations(&self) -> Result<HashMap<TestId, Duration>, StoreError> {
        self.median_durations()
    }

    fn import_durations(
        &mut self,
        durations: &HashMap<TestId, Duration>,
    ) -> Result<usize, StoreError> {
        self.upsert_imported(durations)
    }

    fn test_ids(&self, prefix: &str, limit: usize) -> Result<Vec<TestId>, StoreError> {
        self.select_test_ids(prefix, limit)
    }

    fn abort_unfinished_runs(&mut self) -> Result<usize, StoreError> {
        self.abort_running()
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.select_runs(limit)
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.select_run(run_id)
    }

    fn latest_run(&self) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.select_runs(1)?.into_iter().next())
    }

    fn test_results(&self, run_id: &RunId) -> Result<Vec<TestResult>, StoreError> {
        self.select_tests(run_id)
    }

    fn attempts(&self, run_id: &RunId) -> Result<Vec<AttemptResult>, StoreError> {
        self.select_attempts(run_id)
    }

    fn history(
        &self,
        test_id: &TestId,
        limit: usize,
    ) -> Result<Vec<(RunId, AttemptResult)>, StoreError> {
        self.select_history(test_id, limit)
    }
}

#[cfg(test)]
mod tests;
