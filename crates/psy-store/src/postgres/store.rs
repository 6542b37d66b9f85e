//! [`Store`] for [`PgStore`]: one statement per write in autocommit mode, reads ordered and
//! tie-broken as in SQLite.

use super::{Param, PgStore};
use crate::columns::{
    attempt_from, int, opt_int, parse, run_from, test_from, Decoded, Invalid, ATTEMPT_COLUMNS,
    RUN_COLUMNS,
};
use crate::{expected, ops, RunRecord, RunState, Store, StoreError, HISTORY_WINDOW};
use psy_model::events::RunSummary;
use psy_model::{AttemptResult, RunId, TestId, TestResult, TestStatus};
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

/// The last `$1` pass/fail durations of every id: a skip scan over the history index finds
/// the distinct ids (one probe each), then each id's newest attempts come from the same index.
const WINDOWS: &str = "
WITH RECURSIVE ids(test_id) AS (
    SELECT MIN(test_id) FROM attempts
    UNION ALL
    SELECT (SELECT MIN(a.test_id) FROM attempts a WHERE a.test_id > ids.test_id)
    FROM ids WHERE ids.test_id IS NOT NULL
)
SELECT ids.test_id, recent.duration_ms
FROM ids CROSS JOIN LATERAL (
    SELECT a.duration_ms FROM attempts a
    WHERE a.test_id = ids.test_id AND a.status IN ('pass', 'fail')
    ORDER BY a.started_at_ms DESC, a.seq DESC
    LIMIT $1
) recent";

fn summary_params(s: &RunSummary) -> [i64; 10] {
    [
        int(s.total as u64),
        int(s.passed as u64),
        int(s.failed as u64),
        int(s.flaky as u64),
        int(s.timed_out as u64),
        int(s.oom as u64),
        int(s.errors as u64),
        int(s.not_run as u64),
        int(s.skipped as u64),
        int(s.duration_ms),
    ]
}

/// Sets a run's end: `$1` run id, `$2` state, `$3` finish time, `$4..$13` the summary.
const SET_SUMMARY: &str = "UPDATE runs SET state = $2, finished_at_ms = $3, total = $4,
    passed = $5, failed = $6, flaky = $7, timed_out = $8, oom = $9, errors = $10,
    not_run = $11, skipped = $12, duration_ms = $13
    WHERE run_id = $1";

impl PgStore {
    fn decode<T>(
        &self,
        op: impl Fn() -> String,
        rows: Result<Vec<postgres::Row>, postgres::Error>,
        decode: impl Fn(&postgres::Row) -> Result<Decoded<T>, postgres::Error>,
    ) -> Result<Vec<T>, StoreError> {
        let rows = rows.map_err(|e| self.query_error(op(), e))?;
        rows.iter()
            .map(|row| match decode(row) {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(bad)) => Err(self.invalid(op(), bad)),
                Err(e) => Err(self.query_error(op(), e)),
            })
            .collect()
    }

    fn set_summary(
        &self,
        run_id: &str,
        state: RunState,
        finished_at_ms: i64,
        s: &RunSummary,
        client: Option<&mut postgres::Transaction<'_>>,
    ) -> Result<u64, postgres::Error> {
        let [total, passed, failed, flaky, timed_out, oom, errors, not_run, skipped, duration] =
            summary_params(s);
        let params: [&Param<'_>; 13] = [
            &run_id,
            &state.as_str(),
            &finished_at_ms,
            &total,
            &passed,
            &failed,
            &flaky,
            &timed_out,
            &oom,
            &errors,
            &not_run,
            &skipped,
            &duration,
        ];
        match client {
            Some(tx) => tx.execute(SET_SUMMARY, &params),
            None => self.execute(SET_SUMMARY, &params),
        }
    }

    fn abort_running(&self) -> Result<Vec<RunId>, AbortError> {
        let mut conn = self.conn.borrow_mut();
        let mut tx = conn.client.transaction()?;
        // FOR UPDATE: a run finishing concurrently is either seen finished or waits for us.
        let running = tx.query(
            "SELECT run_id, started_at_ms, total FROM runs WHERE state = 'running'
             ORDER BY run_id FOR UPDATE",
            &[],
        )?;
        let mut aborted = Vec::with_capacity(running.len());
        for row in running {
            let (run_id, started, total): (String, i64, i64) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let mut statuses = Vec::new();
            for v in tx.query(
                "SELECT status, COUNT(*) FROM tests WHERE run_id = $1 GROUP BY status",
                &[&run_id],
            )? {
                let status: TestStatus = parse(v.try_get(0)?, "tests.status")?;
                let n: i64 = v.try_get(1)?;
                statuses.extend(std::iter::repeat_n(status, n.max(0) as usize));
            }
            let last_end: Option<i64> = tx
                .query_one(
                    "SELECT MAX(started_at_ms + duration_ms) FROM attempts WHERE run_id = $1",
                    &[&run_id],
                )?
                .try_get(0)?;
            let (finished, summary) = expected::aborted_summary(
                started.max(0) as u64,
                total.max(0) as usize,
                statuses,
                last_end.map(|e| e.max(0) as u64),
            );
            self.set_summary(
                &run_id,
                RunState::Aborted,
                int(finished),
                &summary,
                Some(&mut tx),
            )?;
            aborted.push(RunId(run_id));
        }
        tx.commit()?;
        Ok(aborted)
    }

    fn unknown_run(&self, op: String, run_id: &RunId) -> StoreError {
        StoreError::UnknownRun {
            database: self.database.clone(),
            op,
            run_id: run_id.to_string(),
        }
    }
}

enum AbortError {
    Sql(postgres::Error),
    Invalid(Invalid),
}

impl From<postgres::Error> for AbortError {
    fn from(e: postgres::Error) -> Self {
        AbortError::Sql(e)
    }
}

impl From<Invalid> for AbortError {
    fn from(bad: Invalid) -> Self {
        AbortError::Invalid(bad)
    }
}

impl Store for PgStore {
    fn begin_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        let [total, passed, failed, flaky, timed_out, oom, errors, not_run, skipped, duration] =
            summary_params(&run.summary);
        self.execute(
            "INSERT INTO runs (run_id, started_at_ms, finished_at_ms, state, manifest,
                command_line, host, note, total, passed, failed, flaky, timed_out, oom, errors,
                not_run, skipped, duration_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, $18)",
            &[
                &run.run_id.as_str(),
                &int(run.started_at_ms),
                &opt_int(run.finished_at_ms),
                &run.state.as_str(),
                &run.manifest,
                &run.command_line,
                &run.host,
                &run.note,
                &total,
                &passed,
                &failed,
                &flaky,
                &timed_out,
                &oom,
                &errors,
                &not_run,
                &skipped,
                &duration,
            ],
        )
        .map_err(|e| self.query_error(ops::begin_run(&run.run_id), e))?;
        tracing::debug!(run_id = %run.run_id, "run recorded");
        Ok(())
    }

    fn record_attempt(&mut self, run_id: &RunId, a: &AttemptResult) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO attempts (run_id, test_id, attempt, status, exit_code, signal,
                started_at_ms, duration_ms, cpu_time_ms, peak_memory_bytes, stdout_path,
                stderr_path, message, io_read_bytes, io_write_bytes, io_read_ops,
                io_write_ops, net_sent_bytes, net_received_bytes, image)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, $18, $19, $20)",
            &[
                &run_id.as_str(),
                &a.test_id.as_str(),
                &i64::from(a.attempt),
                &a.status.as_str(),
                &a.exit.code.map(i64::from),
                &a.exit.signal.map(i64::from),
                &int(a.started_at_ms),
                &int(a.duration_ms),
                &opt_int(a.cpu_time_ms),
                &opt_int(a.peak_memory_bytes),
                &a.stdout_path.as_os_str().as_bytes(),
                &a.stderr_path.as_os_str().as_bytes(),
                &a.message,
                &opt_int(a.io_read_bytes),
                &opt_int(a.io_write_bytes),
                &opt_int(a.io_read_ops),
                &opt_int(a.io_write_ops),
                &opt_int(a.net_sent_bytes),
                &opt_int(a.net_received_bytes),
                &a.image,
            ],
        )
        .map_err(|e| self.query_error(ops::record_attempt(run_id, a), e))?;
        Ok(())
    }

    fn record_test(
        &mut self,
        run_id: &RunId,
        t: &TestResult,
        name: &str,
        variant: Option<&str>,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO tests (run_id, test_id, name, variant, status, attempts, duration_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &run_id.as_str(),
                &t.test_id.as_str(),
                &name,
                &variant,
                &t.status.as_str(),
                &i64::from(t.attempts),
                &int(t.duration_ms),
            ],
        )
        .map_err(|e| self.query_error(ops::record_test(run_id, t), e))?;
        Ok(())
    }

    fn finish_run(
        &mut self,
        run_id: &RunId,
        summary: &RunSummary,
        finished_at_ms: u64,
        state: RunState,
    ) -> Result<(), StoreError> {
        let changed = self
            .set_summary(run_id.as_str(), state, int(finished_at_ms), summary, None)
            .map_err(|e| self.query_error(ops::finish_run(run_id), e))?;
        if changed == 0 {
            return Err(self.unknown_run(ops::finish_run(run_id), run_id));
        }
        tracing::debug!(%run_id, "run finished");
        Ok(())
    }

    fn note_run(&mut self, run_id: &RunId, note: &str) -> Result<(), StoreError> {
        let changed = self
            .execute(
                "UPDATE runs SET note = $2 WHERE run_id = $1",
                &[&run_id.as_str(), &note],
            )
            .map_err(|e| self.query_error(ops::note_run(run_id), e))?;
        if changed == 0 {
            return Err(self.unknown_run(ops::note_run(run_id), run_id));
        }
        Ok(())
    }

    fn expected_durations(&self) -> Result<HashMap<TestId, Duration>, StoreError> {
        let windows_err = |e| self.query_error(ops::EXPECTED_DURATIONS.to_string(), e);
        let mut windows: HashMap<String, Vec<u64>> = HashMap::new();
        for row in self
            .rows(WINDOWS, &[&(HISTORY_WINDOW as i64)])
            .map_err(windows_err)?
        {
            let id: String = row.try_get(0).map_err(windows_err)?;
            // A negative duration (a corrupted row) counts as zero, as in SQLite.
            let duration: i64 = row.try_get(1).map_err(windows_err)?;
            windows.entry(id).or_default().push(duration.max(0) as u64);
        }
        let imported_err = |e| self.query_error(ops::IMPORTED_DURATIONS.to_string(), e);
        let mut imported = HashMap::new();
        for row in self
            .rows("SELECT test_id, duration_us FROM imported_durations", &[])
            .map_err(imported_err)?
        {
            let us: i64 = row.try_get(1).map_err(imported_err)?;
            let id: String = row.try_get(0).map_err(imported_err)?;
            imported.insert(TestId(id), Duration::from_micros(us.max(0) as u64));
        }
        Ok(expected::expected_durations(imported, windows))
    }

    fn import_durations(
        &mut self,
        durations: &HashMap<TestId, Duration>,
    ) -> Result<usize, StoreError> {
        let (ids, us): (Vec<&str>, Vec<i64>) = durations
            .iter()
            .map(|(id, d)| {
                let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
                (id.as_str(), us)
            })
            .unzip();
        self.execute(
            "INSERT INTO imported_durations (test_id, duration_us)
             SELECT * FROM unnest($1::text[], $2::bigint[])
             ON CONFLICT (test_id) DO UPDATE SET duration_us = excluded.duration_us",
            &[&ids, &us],
        )
        .map_err(|e| self.query_error(ops::import_durations(durations.len()), e))?;
        Ok(durations.len())
    }

    fn test_ids(&self, prefix: &str, limit: usize) -> Result<Vec<TestId>, StoreError> {
        let end = format!("{prefix}\u{10FFFF}");
        self.decode(
            || ops::test_ids(prefix),
            self.rows(
                "SELECT DISTINCT test_id FROM attempts WHERE test_id >= $1 AND test_id < $2
                 ORDER BY test_id LIMIT $3",
                &[&prefix, &end, &int(limit as u64)],
            ),
            |row| Ok(Ok(TestId(row.try_get(0)?))),
        )
    }

    fn abort_unfinished_runs(&mut self) -> Result<usize, StoreError> {
        let op = || ops::ABORT_UNFINISHED.to_string();
        let aborted = self.abort_running().map_err(|e| match e {
            AbortError::Sql(e) => self.query_error(op(), e),
            AbortError::Invalid(bad) => self.invalid(op(), bad),
        })?;
        for run_id in &aborted {
            tracing::info!(%run_id, "marked run left running by a killed psy as aborted");
        }
        Ok(aborted.len())
    }

    fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.decode(
            || ops::LIST_RUNS.to_string(),
            self.rows(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at_ms DESC, run_id DESC
                     LIMIT $1"
                ),
                &[&int(limit as u64)],
            ),
            run_from,
        )
    }

    fn run(&self, prefix: &str) -> Result<Option<RunRecord>, StoreError> {
        if prefix.is_empty() {
            return Ok(None);
        }
        let mut found = self.decode(
            || ops::look_up_run(prefix),
            self.rows(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE run_id >= $1 ORDER BY run_id LIMIT 2"
                ),
                &[&prefix],
            ),
            run_from,
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

    fn latest_run(&self) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.runs(1)?.pop())
    }

    fn test_results(&self, run_id: &RunId) -> Result<Vec<TestResult>, StoreError> {
        self.decode(
            || ops::test_results(run_id),
            self.rows(
                "SELECT test_id, status, attempts, duration_ms FROM tests WHERE run_id = $1
                 ORDER BY test_id",
                &[&run_id.as_str()],
            ),
            test_from,
        )
    }

    fn attempts(&self, run_id: &RunId) -> Result<Vec<AttemptResult>, StoreError> {
        self.decode(
            || ops::attempts(run_id),
            self.rows(
                &format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE run_id = $1
                     ORDER BY test_id, attempt"
                ),
                &[&run_id.as_str()],
            ),
            attempt_from,
        )
    }

    fn history(
        &self,
        test_id: &TestId,
        limit: usize,
    ) -> Result<Vec<(RunId, AttemptResult)>, StoreError> {
        self.decode(
            || ops::history(test_id),
            self.rows(
                &format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE test_id = $1
                     ORDER BY started_at_ms DESC, seq DESC LIMIT $2"
                ),
                &[&test_id.as_str(), &int(limit as u64)],
            ),
            |row| {
                let run_id = RunId(row.try_get("run_id")?);
                Ok(attempt_from(row)?.map(|a| (run_id, a)))
            },
        )
    }
}
