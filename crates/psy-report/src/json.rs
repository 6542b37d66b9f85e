//! The machine-readable stream: one JSON object per event per line (schema: `docs/events.md`).

use crate::{event_type, ReportError, Reporter};
use psy_model::RunEvent;
use std::io::Write;

/// Writes each event as one line of JSON and flushes it, so a consumer can follow the run live.
#[derive(Debug)]
pub struct JsonReporter<W: Write> {
    out: W,
}

impl<W: Write> JsonReporter<W> {
    pub fn new(out: W) -> Self {
        JsonReporter { out }
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> Reporter for JsonReporter<W> {
    fn on_event(&mut self, event: &RunEvent) -> Result<(), ReportError> {
        let ty = event_type(event);
        // Encode first so a failed encoding never leaves half a line in the stream.
        let mut line = serde_json::to_vec(event)
            .map_err(|source| ReportError::JsonEncode { event: ty, source })?;
        line.push(b'\n');
        self.out
            .write_all(&line)
            .and_then(|()| self.out.flush())
            .map_err(|source| ReportError::JsonWrite { event: ty, source })
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        self.out.flush().map_err(|source| ReportError::JsonWrite {
            event: "flush",
            source,
        })
    }
}
