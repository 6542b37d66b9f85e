//! Reporters: independent consumers of the [`RunEvent`] stream a run emits.
//!
//! The runner hands every event, in order, to one [`Reporter`] (usually a [`Fanout`] of several):
//! [`HumanReporter`] for people, [`JsonReporter`] for machines (schema in `docs/events.md`),
//! [`JunitReporter`] for CI systems. A web dashboard or a remote agent's uplink is one more
//! implementation of the same trait.

mod error;
pub mod excerpt;
mod fanout;
pub mod format;
mod human;
mod json;
mod junit;
mod logs;
mod tail;
pub mod text;

pub use error::ReportError;
pub use fanout::Fanout;
pub use human::{ColorChoice, DiscoveryView, HumanOptions, HumanReporter, LayerView, Verbosity};
pub use json::JsonReporter;
pub use junit::{JunitOptions, JunitReporter};
pub use logs::OutputSource;
pub use psy_model::RunEvent;

/// A consumer of a run's events.
pub trait Reporter: Send {
    /// Takes the next event; events arrive in the order the run emitted them.
    fn on_event(&mut self, event: &RunEvent) -> Result<(), ReportError>;

    /// Called once after `RunFinished` (or when the run is aborted) to flush/close.
    fn finish(&mut self) -> Result<(), ReportError>;
}

impl<R: Reporter + ?Sized> Reporter for Box<R> {
    fn on_event(&mut self, event: &RunEvent) -> Result<(), ReportError> {
        (**self).on_event(event)
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        (**self).finish()
    }
}

/// The `"type"` tag of an event, as in its JSON form (for error messages and logs).
pub fn event_type(event: &RunEvent) -> &'static str {
    match event {
        RunEvent::RunStarted { .. } => "run-started",
        RunEvent::Warning { .. } => "warning",
        RunEvent::AttemptStarted { .. } => "attempt-started",
        RunEvent::AttemptFinished { .. } => "attempt-finished",
        RunEvent::AttemptRetrying { .. } => "attempt-retrying",
        RunEvent::TestFinished { .. } => "test-finished",
        RunEvent::RunFinished { .. } => "run-finished",
    }
}
