//! Writes: each is one statement in autocommit mode, i.e. one small transaction, through a
//! cached prepared statement (record_attempt runs once per attempt of every test).

use super::convert::{int, opt_int, PathSql};
use super::SqliteStore;
use crate::columns::{parse, Invalid};
use crate::{expected, ops};
use crate::{RunRecord, RunState, StoreError};
use psy_model::events::RunSummary;
use psy_model::{AttemptResult, RunId, TestResult, TestStatus};
use rusqlite::{params, TransactionBehavior};

impl SqliteStore {
    pub(super) fn insert_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        let s = &run.summary;
        self.conn
            .prepare_cached(
                "INSERT INTO runs (run_id, started_at_ms, finished_at_ms, state, manifest,
                    command_line, host, total, passed, failed, flaky, timed_out, oom, errors,
                    not_run, duration_ms, skipped)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    run.run_id.as_str(),
                    int(run.started_at_ms),
                    opt_int(run.finished_at_ms),
                    run.state.as_str(),
                    run.manifest,
                    run.command_line,
                    run.host,
                    int(s.total as u64),
                    int(s.passed as u64),
                    int(s.failed as u64),
                    int(s.flaky as u64),
                    int(s.timed_out as u64),
                    int(s.oom as u64),
                    int(s.errors as u64),
                    int(s.not_run as u64),
                    int(s.duration_ms),
                    int(s.skipped as u64),
                ])
            })
            .map_err(|e| self.query_error(ops::begin_run(&run.run_id), e))?;
        tracing::debug!(run_id = %run.run_id, "run recorded");
        Ok(())
    }

    pub(super) fn insert_attempt(
        &mut self,
        run_id: &RunId,
        a: &AttemptResult,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO attempts (run_id, test_id, attempt, status, exit_code, signal,
                    started_at_ms, duration_ms, cpu_time_ms, peak_memory_bytes, stdout_path,
                    stderr_path, message, io_read_bytes, io_write_bytes, io_read_ops,
                    io_write_ops, net_sent_bytes, net_received_bytes, image)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    run_id.as_str(),
                    a.test_id.as_str(),
                    a.attempt,
                    a.status.as_str(),
                    a.exit.code,
                    a.exit.signal,
                    int(a.started_at_ms),
                    int(a.duration_ms),
                    opt_int(a.cpu_time_ms),
                    opt_int(a.peak_memory_bytes),
                    PathSql(&a.stdout_path),
                    PathSql(&a.stderr_path),
                    a.message,
                    opt_int(a.io_read_bytes),
                    opt_int(a.io_write_bytes),
                    opt_int(a.io_read_ops),
                    opt_int(a.io_write_ops),
                    opt_int(a.net_sent_bytes),
                    opt_int(a.net_received_bytes),
                    a.image,
                ])
            })
            .map_err(|e| self.query_error(ops::record_attempt(run_id, a), e))?;
        Ok(())
    }

    pub(super) fn insert_test(
        &mut self,
        run_id: &RunId,
        t: &TestResult,
        name: &str,
        variant: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO tests (run_id, test_id, name, variant, status, attempts, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    run_id.as_str(),
                    t.test_id.as_str(),
                    name,
                    variant,
                    t.status.as_str(),
                    t.attempts,
                    int(t.duration_ms),
                ])
            })
            .map_err(|e| self.query_error(ops::record_test(run_id, t), e))?;
        Ok(())
    }

    pub(super) fn update_finished(
        &mut self,
        run_id: &RunId,
        summary: &RunSummary,
        finished_at_ms: u64,
        state: RunState,
    ) -> Result<(), StoreError> {
        let op = || ops::finish_run(run_id);
        let changed = self
            .set_summary(run_id, state, summary, finished_at_ms)
            .map_err(|e| self.query_error(op(), e))?;
        if changed == 0 {
            return Err(StoreError::UnknownRun {
                database: self.database.clone(),
                op: op(),
                run_id: run_id.to_string(),
            });
        }
        tracing::debug!(%run_id, "run finished");
        Ok(())
    }

    fn set_summary(
        &self,
        run_id: &RunId,
        state: RunState,
        s: &RunSummary,
        finished_at_ms: u64,
    ) -> rusqlite::Result<usize> {
        self.conn
            .prepare_cached(
                "UPDATE runs SET state = ?2, finished_at_ms = ?3, total = ?4, passed = ?5,
                    failed = ?6, flaky = ?7, timed_out = ?8, oom = ?9, errors = ?10,
                    not_run = ?11, duration_ms = ?12, skipped = ?13
                 WHERE run_id = ?1",
            )?
            .execute(params![
                run_id.as_str(),
                state.as_str(),
                int(finished_at_ms),
                int(s.total as u64),
                int(s.passed as u64),
                int(s.failed as u64),
                int(s.flaky as u64),
                int(s.timed_out as u64),
                int(s.oom as u64),
                int(s.errors as u64),
                int(s.not_run as u64),
                int(s.duration_ms),
                int(s.skipped as u64),
            ])
    }

    pub(super) fn update_note(&mut self, run_id: &RunId, note: &str) -> Result<(), StoreError> {
        let op = || ops::note_run(run_id);
        let updated = self
            .conn
            .prepare_cached("UPDATE runs SET note = ?2 WHERE run_id = ?1")
            .and_then(|mut stmt| stmt.execute(params![run_id.as_str(), note]))
            .map_err(|e| self.query_error(op(), e))?;
        if updated == 0 {
            return Err(StoreError::UnknownRun {
                database: self.database.clone(),
                op: op(),
                run_id: run_id.to_string(),
            });
        }
        Ok(())
    }

    /// Aborted runs get what can still be known ([`expected::aborted_summary`]).
    pub(super) fn abort_running(&mut self) -> Result<usize, StoreError> {
        let op = || ops::ABORT_UNFINISHED.to_string();
        let aborted = self.abort_running_tx().map_err(|e| match e {
            AbortError::Sql(e) => self.query_error(op(), e),
            AbortError::Invalid(bad) => self.invalid(op(), bad),
        })?;
        for run_id in &aborted {
            tracing::info!(%run_id, "marked run left running by a killed psy as aborted");
        }
        Ok(aborted.len())
    }

    fn abort_running_tx(&mut self) -> Result<Vec<RunId>, AbortError> {
        // IMMEDIATE: the runs read here must not finish under us before we rewrite them.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let running: Vec<(String, i64, i64)> = tx
            .prepare("SELECT run_id, started_at_ms, total FROM runs WHERE state = 'running'")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut aborted = Vec::with_capacity(running.len());
        for (run_id, started, total) in running {
            let verdicts: Vec<(String, i64)> = tx
                .prepare_cached(
                    "SELECT status, COUNT(*) FROM tests WHERE run_id = ?1 GROUP BY status",
                )?
                .query_map([&run_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut statuses = Vec::new();
            for (status, n) in verdicts {
                let status: TestStatus = parse(status, "tests.status")?;
                statuses.extend(std::iter::repeat_n(status, n.max(0) as usize));
            }
            let last_end: Option<i64> = tx
                .prepare_cached(
                    "SELECT MAX(started_at_ms + duration_ms) FROM attempts WHERE run_id = ?1",
                )?
                .query_row([&run_id], |r| r.get(0))?;
            let (finished, summary) = expected::aborted_summary(
                started.max(0) as u64,
                total.max(0) as usize,
                statuses,
                last_end.map(|e| e.max(0) as u64),
            );
            let run_id = RunId(run_id);
            tx.prepare_cached(
                "UPDATE runs SET state = 'aborted', finished_at_ms = ?2, passed = ?3, failed = ?4,
                    flaky = ?5, timed_out = ?6, oom = ?7, errors = ?8, not_run = ?9,
                    duration_ms = ?10, skipped = ?11
                 WHERE run_id = ?1",
            )?
            .execute(params![
                run_id.as_str(),
                int(finished),
                int(summary.passed as u64),
                int(summary.failed as u64),
                int(summary.flaky as u64),
                int(summary.timed_out as u64),
                int(summary.oom as u64),
                int(summary.errors as u64),
                int(summary.not_run as u64),
                int(summary.duration_ms),
                int(summary.skipped as u64),
            ])?;
            aborted.push(run_id);
        }
        tx.commit()?;
        Ok(aborted)
    }
}

enum AbortError {
    Sql(rusqlite::Error),
    Invalid(Invalid),
}

impl From<rusqlite::Error> for AbortError {
    fn from(e: rusqlite::Error) -> Self {
        AbortError::Sql(e)
    }
}

impl From<Invalid> for AbortError {
    fn from(bad: Invalid) -> Self {
        AbortError::Invalid(bad)
    }
}
