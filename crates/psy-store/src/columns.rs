//! Decoding rows into model values, shared by the SQL backends: each backend says how to read
//! one column ([`Columns`]); the checks on stored values (in range, a known status) live here
//! once, so SQLite and PostgreSQL reject the same corrupted rows with the same message.

use crate::{RunRecord, RunState};
use psy_model::events::RunSummary;
use psy_model::{AttemptResult, AttemptStatus, ExitInfo, RunId, TestId, TestResult};
use std::path::PathBuf;
use std::str::FromStr;

/// A stored value the model cannot represent (a hand-edited or corrupted database).
#[derive(Debug)]
pub(crate) struct Invalid {
    pub(crate) column: &'static str,
    pub(crate) value: String,
}

/// A row read by the database, possibly holding a value the model rejects.
pub(crate) type Decoded<T> = Result<T, Invalid>;

/// SQL integers are signed; values past `i64::MAX` (never seen in practice) saturate.
pub(crate) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn opt_int(v: Option<u64>) -> Option<i64> {
    v.map(int)
}

/// One row of a result set, read column by column by name.
pub(crate) trait Columns {
    type Error;
    fn int(&self, column: &str) -> Result<i64, Self::Error>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, Self::Error>;
    fn text(&self, column: &str) -> Result<String, Self::Error>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, Self::Error>;
    fn path(&self, column: &str) -> Result<PathBuf, Self::Error>;
}

fn checked<T: TryFrom<i64>>(v: i64, column: &'static str) -> Decoded<T> {
    T::try_from(v).map_err(|_| Invalid {
        column,
        value: v.to_string(),
    })
}

fn opt_checked<T: TryFrom<i64>>(v: Option<i64>, column: &'static str) -> Decoded<Option<T>> {
    v.map(|v| checked(v, column)).transpose()
}

pub(crate) fn parse<T: FromStr>(s: String, column: &'static str) -> Decoded<T> {
    s.parse().map_err(|_| Invalid {
        column,
        value: format!("{s:?}"),
    })
}

/// Columns read by [`run_from`], in a form fit for `SELECT {RUN_COLUMNS} FROM runs`.
pub(crate) const RUN_COLUMNS: &str = "run_id, started_at_ms, finished_at_ms, state, manifest, \
     command_line, host, total, passed, failed, flaky, timed_out, oom, errors, not_run, duration_ms, \
     note, skipped";

pub(crate) fn run_from<C: Columns>(row: &C) -> Result<Decoded<RunRecord>, C::Error> {
    let state = row.text("state")?;
    let started = row.int("started_at_ms")?;
    let finished = row.opt_int("finished_at_ms")?;
    let counts: [i64; 9] = [
        row.int("total")?,
        row.int("passed")?,
        row.int("failed")?,
        row.int("flaky")?,
        row.int("timed_out")?,
        row.int("oom")?,
        row.int("errors")?,
        row.int("not_run")?,
        row.int("skipped")?,
    ];
    let duration = row.int("duration_ms")?;
    let (run_id, manifest, command_line, host, note) = (
        row.text("run_id")?,
        row.text("manifest")?,
        row.text("command_line")?,
        row.text("host")?,
        row.opt_text("note")?,
    );
    Ok((|| {
        Ok(RunRecord {
            run_id: RunId(run_id),
            started_at_ms: checked(started, "runs.started_at_ms")?,
            finished_at_ms: opt_checked(finished, "runs.finished_at_ms")?,
            state: parse::<RunState>(state, "runs.state")?,
            manifest,
            command_line,
            host,
            note,
            summary: RunSummary {
                total: checked(counts[0], "runs.total")?,
                passed: checked(counts[1], "runs.passed")?,
                failed: checked(counts[2], "runs.failed")?,
                flaky: checked(counts[3], "runs.flaky")?,
                timed_out: checked(counts[4], "runs.timed_out")?,
                oom: checked(counts[5], "runs.oom")?,
                errors: checked(counts[6], "runs.errors")?,
                not_run: checked(counts[7], "runs.not_run")?,
                skipped: checked(counts[8], "runs.skipped")?,
                duration_ms: checked(duration, "runs.duration_ms")?,
            },
        })
    })())
}

/// Columns read by [`attempt_from`].
pub(crate) const ATTEMPT_COLUMNS: &str = "run_id, test_id, attempt, status, exit_code, signal, \
     started_at_ms, duration_ms, cpu_time_ms, peak_memory_bytes, stdout_path, stderr_path, message, \
     io_read_bytes, io_write_bytes, io_read_ops, io_write_ops, net_sent_bytes, net_received_bytes, \
     image";

pub(crate) fn attempt_from<C: Columns>(row: &C) -> Result<Decoded<AttemptResult>, C::Error> {
    let attempt = row.int("attempt")?;
    let status = row.text("status")?;
    let code = row.opt_int("exit_code")?;
    let signal = row.opt_int("signal")?;
    let started = row.int("started_at_ms")?;
    let duration = row.int("duration_ms")?;
    let optional: [Option<i64>; 8] = [
        row.opt_int("cpu_time_ms")?,
        row.opt_int("peak_memory_bytes")?,
        row.opt_int("io_read_bytes")?,
        row.opt_int("io_write_bytes")?,
        row.opt_int("io_read_ops")?,
        row.opt_int("io_write_ops")?,
        row.opt_int("net_sent_bytes")?,
        row.opt_int("net_received_bytes")?,
    ];
    let test_id = TestId(row.text("test_id")?);
    let (stdout_path, stderr_path) = (row.path("stdout_path")?, row.path("stderr_path")?);
    let message = row.opt_text("message")?;
    let image = row.opt_text("image")?;
    Ok((|| {
        Ok(AttemptResult {
            test_id,
            attempt: checked(attempt, "attempts.attempt")?,
            status: parse::<AttemptStatus>(status, "attempts.status")?,
            exit: ExitInfo {
                code: opt_checked(code, "attempts.exit_code")?,
                signal: opt_checked(signal, "attempts.signal")?,
            },
            started_at_ms: checked(started, "attempts.started_at_ms")?,
            duration_ms: checked(duration, "attempts.duration_ms")?,
            cpu_time_ms: opt_checked(optional[0], "attempts.cpu_time_ms")?,
            peak_memory_bytes: opt_checked(optional[1], "attempts.peak_memory_bytes")?,
            io_read_bytes: opt_checked(optional[2], "attempts.io_read_bytes")?,
            io_write_bytes: opt_checked(optional[3], "attempts.io_write_bytes")?,
            io_read_ops: opt_checked(optional[4], "attempts.io_read_ops")?,
            io_write_ops: opt_checked(optional[5], "attempts.io_write_ops")?,
            net_sent_bytes: opt_checked(optional[6], "attempts.net_sent_bytes")?,
            net_received_bytes: opt_checked(optional[7], "attempts.net_received_bytes")?,
            image,
            stdout_path,
            stderr_path,
            message,
        })
    })())
}

pub(crate) fn test_from<C: Columns>(row: &C) -> Result<Decoded<TestResult>, C::Error> {
    let test_id = TestId(row.text("test_id")?);
    let status = row.text("status")?;
    let attempts = row.int("attempts")?;
    let duration = row.int("duration_ms")?;
    Ok((|| {
        Ok(TestResult {
            test_id,
            status: parse(status, "tests.status")?,
            attempts: checked(attempts, "tests.attempts")?,
            duration_ms: checked(duration, "tests.duration_ms")?,
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_are_reported_with_their_column() {
        let bad = checked::<u64>(-5, "attempts.duration_ms").unwrap_err();
        assert_eq!(
            (bad.column, bad.value.as_str()),
            ("attempts.duration_ms", "-5")
        );
        assert_eq!(int(u64::MAX), i64::MAX);
        let bad = parse::<AttemptStatus>("maybe".into(), "attempts.status").unwrap_err();
        assert_eq!(bad.value, "\"maybe\"");
    }
}
