//! What can go wrong when driving a warm worker, naming the worker and the test.

use std::io;
use std::path::PathBuf;

/// Starting, talking to or stopping a warm pytest worker failed.
#[derive(Debug, thiserror::Error)]
pub enum WarmError {
    #[error("cannot start the warm pytest worker `{python}` in {}: {source}", cwd.display())]
    Spawn {
        python: String,
        cwd: PathBuf,
        source: io::Error,
    },
    /// The worker could not collect (an import error, a usage error): fall back to cold starts.
    #[error("the warm pytest worker in {} could not collect: {reason}{}", cwd.display(), tail(stderr))]
    Collect {
        cwd: PathBuf,
        reason: String,
        stderr: String,
    },
    /// Collection took longer than allowed; the worker was killed.
    #[error("the warm pytest worker in {} did not collect within {timeout:?} and was killed{}", cwd.display(), tail(stderr))]
    CollectTimeout {
        cwd: PathBuf,
        timeout: std::time::Duration,
        stderr: String,
    },
    #[error("the warm pytest worker (pid {pid}) refused to run `{nodeid}`: {reason}")]
    Refused {
        pid: u32,
        nodeid: String,
        reason: String,
    },
    #[error(
        "the warm pytest worker (pid {pid}) ended while {doing}{}",
        tail(stderr)
    )]
    Gone {
        pid: u32,
        doing: String,
        stderr: String,
    },
    #[error("talking to the warm pytest worker (pid {pid}): {source}")]
    Io { pid: u32, source: io::Error },
    #[error("the warm pytest worker (pid {pid}) sent an unreadable line {line:?}: {source}")]
    Protocol {
        pid: u32,
        line: String,
        source: serde_json::Error,
    },
    #[error("cannot open a pidfd for warm child {pid} (`{nodeid}`): {source}")]
    Pidfd {
        pid: u32,
        nodeid: String,
        source: io::Error,
    },
}

/// A warm child's result file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error("cannot read the warm result {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("the warm result {} is not a result: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The end of the worker's stderr, for error messages.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let last = &lines[lines.len().saturating_sub(10)..];
    format!("; its last output:\n{}", last.join("\n"))
}
