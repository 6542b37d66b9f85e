//! Encoding of model values in SQLite columns: unsigned integers as INTEGER, statuses as their
//! model strings, paths as TEXT (or BLOB when not UTF-8, so no path is ever mangled).

use crate::{RunRecord, RunState};
use psy_model::events::RunSummary;
use psy_model::{AttemptResult, AttemptStatus, ExitInfo, RunId, TestId, TestResult, TestStatus};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Row, ToSql};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A stored value the model cannot represent (a hand-edited or corrupted database).
#[derive(Debug)]
pub(super) struct Invalid {
    pub(super) column: &'static str,
    pub(super) value: String,
}

/// A row read by SQLite, possibly holding a value the model rejects.
pub(super) type Decoded<T> = Result<T, Invalid>;

/// SQLite integers are signed; values past `i64::MAX` (never seen in practice) saturate.
pub(super) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn opt_int(v: Option<u64>) -> Option<i64> {
    v.map(int)
}

/// A path column: TEXT when it is UTF-8, otherwise its raw bytes as a BLOB.
pub(super) struct PathSql<'a>(pub(super) &'a Path);

impl ToSql for PathSql<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0.to_str() {
            Some(s) => ValueRef::Text(s.as_bytes()),
            None => ValueRef::Blob(self.0.as_os_str().as_bytes()),
        }))
    }
}

fn unsigned(v: i64, column: &'static str) -> Decoded<u64> {
    u64::try_from(v).map_err(|_| Invalid {
        column,
        value: v.to_string(),
    })
}

fn opt_unsigned(v: Option<i64>, column: &'static str) -> Decoded<Option<u64>> {
    v.map(|v| unsigned(v, column)).transpose()
}

fn count(v: i64, column: &'static str) -> Decoded<usize> {
    usize::try_from(v).map_err(|_| Invalid {
        column,
        value: v.to_string(),
    })
}

fn small(v: i64, column: &'static str) -> Decoded<u32> {
    u32::try_from(v).map_err(|_| Invalid {
        column,
        value: v.to_string(),
    })
}

fn signed(v: Option<i64>, column: &'static str) -> Decoded<Option<i32>> {
    v.map(|v| {
        i32::try_from(v).map_err(|_| Invalid {
            column,
            value: v.to_string(),
        })
    })
    .transpose()
}

pub(super) fn parse<T: FromStr>(s: String, column: &'static str) -> Decoded<T> {
    s.parse().map_err(|_| Invalid {
        column,
        value: format!("{s:?}"),
    })
}

fn path(row: &Row<'_>, column: &'static str) -> rusqlite::Result<PathBuf> {
    Ok(match row.get_ref(column)? {
        ValueRef::Text(b) | ValueRef::Blob(b) => PathBuf::from(OsStr::from_bytes(b)),
        _ => PathBuf::new(),
    })
}

/// Columns read by [`run_from_row`], in a form fit for `SELECT {RUN_COLUMNS} FROM runs`.
pub(super) const RUN_COLUMNS: &str = "run_id, started_at_ms, finished_at_ms, state, manifest, \
     command_line, host, total, passed, failed, flaky, timed_out, oom, errors, not_run, duration_ms, \
     note, skipped";

pub(super) fn run_from_row(row: &Row<'_>) -> rusqlite::Result<Decoded<RunRecord>> {
    let state: String = row.get("state")?;
    let started: i64 = row.get("started_at_ms")?;
    let finished: Option<i64> = row.get("finished_at_ms")?;
    let counts: [i64; 9] = [
        row.get("total")?,
        row.get("passed")?,
        row.get("failed")?,
        row.get("flaky")?,
        row.get("timed_out")?,
        row.get("oom")?,
        row.get("errors")?,
        row.get("not_run")?,
        row.get("skipped")?,
    ];
    let duration: i64 = row.get("duration_ms")?;
    let (run_id, manifest, command_line, host, note) = (
        row.get("run_id")?,
        row.get("manifest")?,
        row.get("command_line")?,
        row.get("host")?,
        row.get("note")?,
    );
    Ok((|| {
        Ok(RunRecord {
            run_id: RunId(run_id),
            started_at_ms: unsigned(started, "runs.started_at_ms")?,
            finished_at_ms: opt_unsigned(finished, "runs.finished_at_ms")?,
            state: parse::<RunState>(state, "runs.state")?,
            manifest,
            command_line,
            host,
            note,
            summary: RunSummary {
                total: count(counts[0], "runs.total")?,
                passed: count(counts[1], "runs.passed")?,
                failed: count(counts[2], "runs.failed")?,
                flaky: count(counts[3], "runs.flaky")?,
                timed_out: count(counts[4], "runs.timed_out")?,
                oom: count(counts[5], "runs.oom")?,
                errors: count(counts[6], "runs.errors")?,
                not_run: count(counts[7], "runs.not_run")?,
                skipped: count(counts[8], "runs.skipped")?,
                duration_ms: unsigned(duration, "runs.duration_ms")?,
            },
        })
    })())
}

/// Columns read by [`attempt_from_row`].
pub(super) const ATTEMPT_COLUMNS: &str = "run_id, test_id, attempt, status, exit_code, signal, \
     started_at_ms, duration_ms, cpu_time_ms, peak_memory_bytes, stdout_path, stderr_path, message, \
     io_read_bytes, io_write_bytes, io_read_ops, io_write_ops, net_sent_bytes, net_received_bytes";

pub(super) fn attempt_from_row(row: &Row<'_>) -> rusqlite::Result<Decoded<AttemptResult>> {
    let attempt: i64 = row.get("attempt")?;
    let status: String = row.get("status")?;
    let code: Option<i64> = row.get("exit_code")?;
    let signal: Option<i64> = row.get("signal")?;
    let started: i64 = row.get("started_at_ms")?;
    let duration: i64 = row.get("duration_ms")?;
    let cpu: Option<i64> = row.get("cpu_time_ms")?;
    let memory: Option<i64> = row.get("peak_memory_bytes")?;
    let io_read: Option<i64> = row.get("io_read_bytes")?;
    let io_write: Option<i64> = row.get("io_write_bytes")?;
    let read_ops: Option<i64> = row.get("io_read_ops")?;
    let write_ops: Option<i64> = row.get("io_write_ops")?;
    let net_sent: Option<i64> = row.get("net_sent_bytes")?;
    let net_received: Option<i64> = row.get("net_received_bytes")?;
    let test_id = TestId(row.get("test_id")?);
    let (stdout_path, stderr_path) = (path(row, "stdout_path")?, path(row, "stderr_path")?);
    let message: Option<String> = row.get("message")?;
    Ok((|| {
        Ok(AttemptResult {
            test_id,
            attempt: small(attempt, "attempts.attempt")?,
            status: parse::<AttemptStatus>(status, "attempts.status")?,
            exit: ExitInfo {
                code: signed(code, "attempts.exit_code")?,
                signal: signed(signal, "attempts.signal")?,
            },
            started_at_ms: unsigned(started, "attempts.started_at_ms")?,
            duration_ms: unsigned(duration, "attempts.duration_ms")?,
            cpu_time_ms: opt_unsigned(cpu, "attempts.cpu_time_ms")?,
            peak_memory_bytes: opt_unsigned(memory, "attempts.peak_memory_bytes")?,
            io_read_bytes: opt_unsigned(io_read, "attempts.io_read_bytes")?,
            io_write_bytes: opt_unsigned(io_write, "attempts.io_write_bytes")?,
            io_read_ops: opt_unsigned(read_ops, "attempts.io_read_ops")?,
            io_write_ops: opt_unsigned(write_ops, "attempts.io_write_ops")?,
            net_sent_bytes: opt_unsigned(net_sent, "attempts.net_sent_bytes")?,
            net_received_bytes: opt_unsigned(net_received, "attempts.net_received_bytes")?,
            stdout_path,
            stderr_path,
            message,
        })
    })())
}

pub(super) fn test_from_row(row: &Row<'_>) -> rusqlite::Result<Decoded<TestResult>> {
    let test_id = TestId(row.get("test_id")?);
    let status: String = row.get("status")?;
    let attempts: i64 = row.get("attempts")?;
    let duration: i64 = row.get("duration_ms")?;
    Ok((|| {
        Ok(TestResult {
            test_id,
            status: parse::<TestStatus>(status, "tests.status")?,
            attempts: small(attempts, "tests.attempts")?,
            duration_ms: unsigned(duration, "tests.duration_ms")?,
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_paths_survive_a_round_trip() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let odd = PathBuf::from(OsStr::from_bytes(b"/logs/caf\xe9.out"));
        for p in [PathBuf::from("/logs/ok.out"), odd] {
            let back = conn
                .query_row("SELECT ?1 AS p", [PathSql(&p)], |row| path(row, "p"))
                .unwrap();
            assert_eq!(back, p);
        }
    }

    #[test]
    fn out_of_range_values_are_reported_with_their_column() {
        let bad = unsigned(-5, "attempts.duration_ms").unwrap_err();
        assert_eq!(
            (bad.column, bad.value.as_str()),
            ("attempts.duration_ms", "-5")
        );
        assert_eq!(int(u64::MAX), i64::MAX);
        let bad = parse::<AttemptStatus>("maybe".into(), "attempts.status").unwrap_err();
        assert_eq!(bad.value, "\"maybe\"");
    }
}
