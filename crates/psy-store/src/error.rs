//! Errors of the results store. Each names the database and the operation that failed; the
//! backend's own error is the `source` (print the chain, e.g. anyhow's `{:#}`, to see it).

use std::path::PathBuf;

/// The database backend's own error, boxed so the [`crate::Store`] trait names no backend type.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl StoreError {
    /// Whether it failed because the disk holding the database is full (SQLite's "database or
    /// disk is full", PostgreSQL's `disk_full`, or ENOSPC / EDQUOT from the system).
    pub fn is_disk_full(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(err) = cause {
            if let Some(e) = err.downcast_ref::<rusqlite::Error>() {
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
                    return true;
                }
            }
            #[cfg(feature = "postgres")]
            if let Some(e) = err.downcast_ref::<postgres::Error>() {
                if e.code() == Some(&postgres::error::SqlState::DISK_FULL) {
                    return true;
                }
            }
            if let Some(e) = err.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind::{QuotaExceeded, StorageFull};
                if matches!(e.kind(), StorageFull | QuotaExceeded) {
                    return true;
                }
            }
            cause = err.source();
        }
        false
    }
}

/// Why a results-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the directory {dir} for the results database")]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot open the results database {database}")]
    Open {
        database: String,
        #[source]
        source: BackendError,
    },

    #[error("cannot migrate the results database {database} from schema version {from} to {to}")]
    Migrate {
        database: String,
        from: u32,
        to: u32,
        #[source]
        source: BackendError,
    },

    #[error(
        "the results database {database} has schema version {found}, but this psy knows only \
         versions up to {supported}; upgrade psy or move the database away"
    )]
    SchemaTooNew {
        database: String,
        found: u32,
        supported: u32,
    },

    #[error("{op} failed in the results database {database}")]
    Query {
        database: String,
        /// What was being done, e.g. "recording attempt 2 of test foo in run X".
        op: String,
        #[source]
        source: BackendError,
    },

    #[error(
        "{op} in the results database {database}: column {column} holds invalid value {value}"
    )]
    InvalidValue {
        database: String,
        op: String,
        column: &'static str,
        value: String,
    },

    #[error("{op} in the results database {database}: there is no run {run_id}")]
    UnknownRun {
        database: String,
        op: String,
        run_id: String,
    },

    #[error(
        "run id prefix {prefix:?} is ambiguous in the results database {database}: it matches \
         {} and possibly more; give more characters", candidates.join(", ")
    )]
    AmbiguousRun {
        database: String,
        prefix: String,
        candidates: Vec<String>,
    },
}
