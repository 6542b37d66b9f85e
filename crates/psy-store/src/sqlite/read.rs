//! Reads for `psy show` and reporters: run listings, one run's verdicts and attempts, and the
//! history of one test across runs.

use super::convert::{
    attempt_from_row, int, run_from_row, test_from_row, ATTEMPT_COLUMNS, RUN_COLUMNS,
};
use super::SqliteStore;
use crate::columns::Decoded;
use crate::ops;
use crate::{RunRecord, StoreError};
use psy_model::{AttemptResult, RunId, TestId, TestResult};
use rusqlite::{params, Params, Row};

impl SqliteStore {
    /// Runs `sql` through the statement cache and decodes every row, naming `op` on failure.
    fn select<T, P: Params>(
        &self,
        op: impl Fn() -> String,
        sql: &str,
        params: P,
        decode: impl FnMut(&Row<'_>) -> rusqlite::Result<Decoded<T>>,
    ) -> Result<Vec<T>, StoreError> {
        let rows: Vec<Decoded<T>> = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.query_map(params, decode)?.collect())
            .map_err(|e| self.query_error(op(), e))?;
        rows.into_iter()
            .map(|r| r.map_err(|bad| self.invalid(op(), bad)))
            .collect()
    }

    pub(super) fn select_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.select(
            || ops::LIST_RUNS.to_string(),
            &format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at_ms DESC, run_id DESC LIMIT ?1"
            ),
            [int(limit as u64)],
            run_from_row,
        )
    }

    /// Exact id first; otherwise the ids sorting at or after `prefix` that start with it.
    /// Walking the primary key from `prefix` finds them without scanning the table.
    pub(super) fn select_run(&self, prefix: &str) -> Result<Option<RunRecord>, StoreError> {
        if prefix.is_empty() {
            return Ok(None);
        }
        let op = || ops::look_up_run(prefix);
        let mut found = self.select(
            op,
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id >= ?1 ORDER BY run_id LIMIT 2"),
            [prefix],
            run_from_row,
        )?;
        found.retain(|r| r.run_id.as_str().starts_with(prefix));
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ if found[0].run_id.as_str() == prefix => Ok(Some(found.swap_remove(0))),
            _ => Err(StoreError::AmbiguousRun {
                database: self.database.clone(),
                prefix: prefix.to_string(),
                candidates: found.into_iter().map(|r| r.run_id.0).collect(),
            }),
        }
    }

    pub(super) fn select_tests(&self, run_id: &RunId) -> Result<Vec<TestResult>, StoreError> {
        self.select(
            || ops::test_results(run_id),
            "SELECT test_id, status, attempts, duration_ms FROM tests WHERE run_id = ?1
             ORDER BY test_id",
            [run_id.as_str()],
            test_from_row,
        )
    }

    pub(super) fn select_attempts(&self, run_id: &RunId) -> Result<Vec<AttemptResult>, StoreError> {
        self.select(
            || ops::attempts(run_id),
            &format!(
                "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE run_id = ?1 ORDER BY test_id, attempt"
            ),
            [run_id.as_str()],
            attempt_from_row,
        )
    }

    pub(super) fn select_history(
        &self,
        test_id: &TestId,
        limit: usize,
    ) -> Result<Vec<(RunId, AttemptResult)>, StoreError> {
        self.select(
            || ops::history(test_id),
            &format!(
                "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE test_id = ?1
                 ORDER BY started_at_ms DESC, rowid DESC LIMIT ?2"
            ),
            params![test_id.as_str(), int(limit as u64)],
            |row| {
                let run_id = RunId(row.get("run_id")?);
                Ok(attempt_from_row(row)?.map(|a| (run_id, a)))
            },
        )
    }

    /// Walks the history index from `prefix`: every id that starts with it sorts between
    /// `prefix` and `prefix` followed by the highest code point.
    pub(super) fn select_test_ids(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<TestId>, StoreError> {
        let end = format!("{prefix}\u{10FFFF}");
        self.select(
            || ops::test_ids(prefix),
            "SELECT DISTINCT test_id FROM attempts WHERE test_id >= ?1 AND test_id < ?2
             ORDER BY test_id LIMIT ?3",
            params![prefix, end, int(limit as u64)],
            |row| Ok(Ok(TestId(row.get(0)?))),
        )
    }
}
