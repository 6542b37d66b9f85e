//! Encoding of model values in SQLite columns: unsigned integers as INTEGER, statuses as their
//! model strings, paths as TEXT (or BLOB when not UTF-8, so no path is ever mangled). Decoding
//! goes through the shared [`crate::columns`] rules.

use crate::columns::{attempt_from, run_from, test_from, Columns, Decoded};
use psy_model::{AttemptResult, TestResult};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Row, ToSql};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub(super) use crate::columns::{int, opt_int, ATTEMPT_COLUMNS, RUN_COLUMNS};

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

impl Columns for Row<'_> {
    type Error = rusqlite::Error;
    fn int(&self, column: &str) -> rusqlite::Result<i64> {
        self.get(column)
    }
    fn opt_int(&self, column: &str) -> rusqlite::Result<Option<i64>> {
        self.get(column)
    }
    fn text(&self, column: &str) -> rusqlite::Result<String> {
        self.get(column)
    }
    fn opt_text(&self, column: &str) -> rusqlite::Result<Option<String>> {
        self.get(column)
    }
    fn path(&self, column: &str) -> rusqlite::Result<PathBuf> {
        Ok(match self.get_ref(column)? {
            ValueRef::Text(b) | ValueRef::Blob(b) => PathBuf::from(OsStr::from_bytes(b)),
            _ => PathBuf::new(),
        })
    }
}

pub(super) fn run_from_row(row: &Row<'_>) -> rusqlite::Result<Decoded<crate::RunRecord>> {
    run_from(row)
}

pub(super) fn attempt_from_row(row: &Row<'_>) -> rusqlite::Result<Decoded<AttemptResult>> {
    attempt_from(row)
}

pub(super) fn test_from_row(row: &Row<'_>) -> rusqlite::Result<Decoded<TestResult>> {
    test_from(row)
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
                .query_row("SELECT ?1 AS p", [PathSql(&p)], |row| row.path("p"))
                .unwrap();
            assert_eq!(back, p);
        }
    }
}
