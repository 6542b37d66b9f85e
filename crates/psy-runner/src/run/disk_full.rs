//! The run when the disk holding `.psyduck` fills up: the reserve is given back so the store can
//! commit, no new attempt starts, the running ones are killed and recorded, and the run ends
//! marked with the reason instead of being lost.

use super::{InFlight, RunError, RunLoop};
use crate::attempt::{self, AttemptPaths};
use crate::executor::ExecOutcome;
use crate::jobs::AttemptJob;
use crate::reserve::{is_full, nearly_full};
use psy_model::{AttemptStatus, RunEvent};
use psy_store::{Store, StoreError};
use std::error::Error;

/// What is recorded for an attempt killed because the disk filled up.
const KILLED: &str = "killed: the disk holding .psyduck filled up during the run";

/// An attempt killed because the disk filled up, with what its executor measured.
#[derive(Debug)]
pub(super) struct Stopped {
    job: AttemptJob,
    started_at_ms: u64,
    paths: AttemptPaths,
    outcome: ExecOutcome,
}

impl RunLoop<'_> {
    /// A store write; if it failed because the disk is full, the run stops (freeing the
    /// reserve) and the write is tried once more.
    pub(super) fn write<T>(
        &mut self,
        op: impl Fn(&mut dyn Store) -> Result<T, StoreError>,
    ) -> Result<T, RunError> {
        match op(&mut *self.store) {
            Err(e) if self.disk_full.is_none() && self.full(e.is_disk_full()) => {
                self.stop_for_full_disk(&chain(&e));
                Ok(op(&mut *self.store)?)
            }
            other => Ok(other?),
        }
    }

    /// After an I/O error preparing an attempt: whether it was the disk filling up (then the
    /// run has stopped).
    pub(super) fn stopped_by(&mut self, err: &std::io::Error, what: &str) -> bool {
        if self.disk_full.is_none() && self.full(is_full(err)) {
            self.stop_for_full_disk(&format!("{what}: {err}"));
        }
        self.disk_full.is_some()
    }

    /// Whether the disk is full: the error says so, or too little space is left (layers above
    /// the system call do not always keep ENOSPC).
    fn full(&self, says_so: bool) -> bool {
        says_so || nearly_full(self.state.root())
    }

    /// Kills every running attempt (waiting until it is gone, so none takes the space back),
    /// then frees the reserve; new attempts no longer start.
    pub(super) fn stop_for_full_disk(&mut self, cause: &str) {
        let reason = format!(
            "the disk holding {} is full: {cause}",
            self.state.root().display()
        );
        tracing::debug!("{reason}; stopping the run");
        let mut flights: Vec<InFlight> = std::mem::take(&mut self.in_flight);
        for f in &mut flights {
            f.handle.kill();
        }
        for f in flights {
            let _ = self.scheduler.finished(f.job.key);
            let outcome = f.handle.finish();
            self.release(&f.paths);
            self.stopped.push(Stopped {
                job: f.job,
                started_at_ms: f.started_at_ms,
                paths: f.paths,
                outcome,
            });
        }
        let freed = if self.reserve.release() {
            "its reserve was freed to record the results"
        } else {
            "there was no reserve to free"
        };
        (self.emit)(&RunEvent::Warning {
            message: format!(
                "{reason}; {freed}; stopping the run: no new test starts, running ones were killed"
            ),
        });
        self.disk_full = Some(reason);
    }

    /// Records the attempts killed by [`Self::stop_for_full_disk`], as errors.
    pub(super) fn settle_stopped(&mut self) -> Result<(), RunError> {
        for s in std::mem::take(&mut self.stopped) {
            let (test, attempt) = (&s.job.test, s.job.attempt);
            let mut result =
                attempt::result(test, attempt, s.started_at_ms, false, s.outcome, s.paths);
            result.status = AttemptStatus::Error;
            result.message = Some(KILLED.into());
            self.settle(&s.job, result)?;
        }
        Ok(())
    }
}

/// An error and its causes on one line.
fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        text.push_str(&format!(": {e}"));
        cause = e.source();
    }
    text
}
