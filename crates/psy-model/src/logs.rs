//! An attempt's output as blobs: each stream of each attempt is addressed by its
//! [`AttemptKey`], written and read through a [`LogStore`]. The local store keeps files under
//! `.psyduck/logs`; an agent's could upload them to the server. Events keep the blob's local
//! location (`stdout_path`) for readers of the JSON stream on the machine that ran it.

use crate::{AttemptResult, RunId, TestId};
use std::fs::File;
use std::io;
use std::path::PathBuf;

/// One attempt of one test in one run: the address of its logs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AttemptKey {
    pub run_id: RunId,
    pub test_id: TestId,
    pub attempt: u32,
}

impl AttemptKey {
    /// The key of a recorded attempt of run `run_id`.
    pub fn of(run_id: &RunId, result: &AttemptResult) -> Self {
        AttemptKey {
            run_id: run_id.clone(),
            test_id: result.test_id.clone(),
            attempt: result.attempt,
        }
    }
}

/// Which of an attempt's output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub const BOTH: [LogStream; 2] = [LogStream::Stdout, LogStream::Stderr];

    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// Where attempts' output goes and is read back from. A stream that wrote nothing may leave
/// no blob: readers treat a missing one as empty.
pub trait LogStore: std::fmt::Debug + Send + Sync {
    /// Prepares to write the logs of `run` (before its first [`Self::writer`]).
    fn open_run(&self, run: &RunId) -> io::Result<()>;

    /// A file for the attempt's stream, which the test writes from its first instruction
    /// (readers may see it grow). Call [`Self::finish`] when every writer is gone.
    fn writer(&self, attempt: &AttemptKey, stream: LogStream) -> io::Result<File>;

    /// The attempt ended and its stream is complete (the local store drops an empty one).
    fn finish(&self, attempt: &AttemptKey, stream: LogStream);

    /// The stream's content to read (and seek in), `None` when it wrote nothing.
    fn read(&self, attempt: &AttemptKey, stream: LogStream) -> io::Result<Option<File>>;

    /// Where a person finds the blob: a local path (shown in headers, kept in events and the
    /// results store).
    fn location(&self, attempt: &AttemptKey, stream: LogStream) -> PathBuf;
}
