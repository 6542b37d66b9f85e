//! Reading PostgreSQL rows through the shared [`Columns`] decoding.

use crate::columns::Columns;
use postgres::Row;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

impl Columns for Row {
    type Error = postgres::Error;
    fn int(&self, column: &str) -> Result<i64, postgres::Error> {
        self.try_get(column)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, postgres::Error> {
        self.try_get(column)
    }
    fn text(&self, column: &str) -> Result<String, postgres::Error> {
        self.try_get(column)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, postgres::Error> {
        self.try_get(column)
    }
    fn path(&self, column: &str) -> Result<PathBuf, postgres::Error> {
        let bytes: &[u8] = self.try_get(column)?;
        Ok(PathBuf::from(OsStr::from_bytes(bytes)))
    }
}
