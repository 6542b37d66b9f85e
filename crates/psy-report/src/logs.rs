//! Where reporters read tests' output: through the run's [`LogStore`], by attempt, when the
//! reporter was given one; otherwise at the locations the events carry (a stream of events
//! replayed on the machine that ran them).

use psy_model::{AttemptKey, AttemptResult, LogStore, LogStream, RunId};
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// The log store a reporter reads output through, if any.
#[derive(Clone, Debug, Default)]
pub struct OutputSource {
    store: Option<Arc<dyn LogStore>>,
}

impl OutputSource {
    /// Reads through `store`, by the attempt's key.
    pub fn store(store: Arc<dyn LogStore>) -> Self {
        OutputSource { store: Some(store) }
    }

    /// The output of the attempts of `run` (the reporter learns it from `RunStarted`).
    pub(crate) fn of_run<'a>(&'a self, run: Option<&'a RunId>) -> RunLogs<'a> {
        RunLogs { source: self, run }
    }
}

/// An [`OutputSource`] for one run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunLogs<'a> {
    source: &'a OutputSource,
    run: Option<&'a RunId>,
}

/// One stream of one attempt, opened.
#[derive(Debug)]
pub(crate) struct Blob {
    /// Where a person finds it.
    pub(crate) location: PathBuf,
    /// `None`: the stream wrote nothing.
    pub(crate) content: io::Result<Option<File>>,
}

impl RunLogs<'_> {
    pub(crate) fn open(&self, a: &AttemptResult, stream: LogStream) -> Blob {
        if let (Some(store), Some(run)) = (&self.source.store, self.run) {
            let key = AttemptKey::of(run, a);
            return Blob {
                location: store.location(&key, stream),
                content: store.read(&key, stream),
            };
        }
        let location = match stream {
            LogStream::Stdout => a.stdout_path.clone(),
            LogStream::Stderr => a.stderr_path.clone(),
        };
        Blob {
            content: open_if_any(&location),
            location,
        }
    }
}

/// The file at `path`; `None` when there is none (psy keeps no file for a stream that wrote
/// nothing).
pub(crate) fn open_if_any(path: &std::path::Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
