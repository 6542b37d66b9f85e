//! The one error type of reporting: every variant names the reporter and the file or stream.

use std::io;
use std::path::PathBuf;

/// Why a reporter could not take an event or finish.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Writing human output (progress lines, failure tails, summary) failed.
    #[error("could not write the human-readable report to {target}")]
    HumanWrite {
        /// "stderr" or "the given writer".
        target: &'static str,
        #[source]
        source: io::Error,
    },

    /// Encoding an event as JSON failed (it should not: every event is plain data).
    #[error("could not encode the {event} event as JSON")]
    JsonEncode {
        /// The event's `"type"` tag.
        event: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// Writing or flushing a JSON line failed (e.g. the consumer closed the pipe).
    #[error("could not write the {event} event to the JSON-lines stream")]
    JsonWrite {
        /// The event's `"type"` tag, or "flush" when finishing.
        event: &'static str,
        #[source]
        source: io::Error,
    },

    /// Serialising the JUnit report failed.
    #[error("could not serialise the JUnit report for {path}")]
    JunitSerialize {
        path: PathBuf,
        #[source]
        source: quick_junit::SerializeError,
    },

    /// Creating, writing or renaming the JUnit file failed.
    #[error("could not write the JUnit report to {path}")]
    JunitWrite {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Several reporters of a [`crate::Fanout`] failed on the same call.
    #[error("{} reporters failed: {}", .0.len(), join(.0))]
    Several(Vec<ReportError>),
}

fn join(errors: &[ReportError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
