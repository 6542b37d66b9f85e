//! The documented exit codes: 0 all passed, 1 a test failed, 2 usage or configuration error
//! (nothing ran), 3 psy itself failed (store, sandbox or I/O error during a run), 4 the disk
//! holding `.psyduck` filled up and the run stopped early (every finished result recorded),
//! 130 interrupted by Ctrl-C, SIGTERM or SIGHUP (finished results recorded; a second Ctrl-C
//! ends psy at once, also with 130).

use std::fmt;
use std::process::ExitCode;

pub(crate) const TESTS_FAILED: u8 = 1;
pub(crate) const USAGE: u8 = 2;
pub(crate) const INTERNAL: u8 = 3;
pub(crate) const DISK_FULL: u8 = 4;
pub(crate) const INTERRUPTED: u8 = 130;

/// An error the user must fix before anything runs (bad manifest, unknown run or test, bad flag).
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Wraps any displayable error as a usage error.
pub(crate) fn usage(err: impl fmt::Display) -> anyhow::Error {
    UsageError(err.to_string()).into()
}

pub(crate) fn code_for(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<UsageError>().is_some()
        || err.downcast_ref::<psy_bench::UsageError>().is_some()
    {
        ExitCode::from(USAGE)
    } else {
        ExitCode::from(INTERNAL)
    }
}
