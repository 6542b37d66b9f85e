//! A scenario's timeline: one JSON line per event (a node started, became ready, exited; a
//! fault asked for and its result), with milliseconds since the attempt started, flushed as it
//! happens so a killed psy keeps what happened before.

use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One line of `scenario.jsonl`.
#[derive(Debug, Serialize)]
pub(super) struct Entry<'a> {
    /// Milliseconds since the attempt started.
    pub(super) at_ms: u64,
    /// `node-started`, `node-ready`, `node-exited`, `fault`, `driver-started`, ...
    pub(super) event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) node: Option<&'a str>,
    /// What happened, for a person: a fault's request and result, an exit status.
    pub(super) detail: String,
    /// `false` for a refused or failed fault, a node that failed its probe.
    pub(super) ok: bool,
}

/// The timeline file of one attempt.
#[derive(Debug)]
pub(super) struct Timeline {
    path: PathBuf,
    file: Option<File>,
    started: Instant,
}

impl Timeline {
    /// Creates (truncates) `path`; without a file the timeline is only logged.
    pub(super) fn create(path: &Path, started: Instant) -> Timeline {
        let file = File::create(path)
            .map_err(|e| tracing::warn!("scenario timeline {}: {e}", path.display()))
            .ok();
        Timeline {
            path: path.to_path_buf(),
            file,
            started,
        }
    }

    /// Appends one event.
    pub(super) fn record(&mut self, event: &str, node: Option<&str>, ok: bool, detail: String) {
        let entry = Entry {
            at_ms: self.started.elapsed().as_millis() as u64,
            event,
            node,
            detail,
            ok,
        };
        tracing::debug!(event, ?node, ok, detail = %entry.detail, "scenario");
        let Some(file) = &mut self.file else { return };
        let mut line = serde_json::to_vec(&entry).expect("a timeline entry serialises");
        line.push(b'\n');
        if let Err(e) = file.write_all(&line) {
            tracing::warn!("scenario timeline {}: {e}", self.path.display());
            self.file = None;
        }
    }
}
