//! What the engine does with a finished attempt: record it, report it, and act on what the job
//! source says follows (a retry, a stop, the test's verdict).

use super::{RunError, RunLoop};
use crate::jobs::AttemptJob;
use psy_model::{AttemptResult, RunEvent};

impl RunLoop<'_> {
    /// Records one finished attempt of `job`, then reports what the source makes of it.
    pub(super) fn settle(
        &mut self,
        job: &AttemptJob,
        mut result: AttemptResult,
    ) -> Result<(), RunError> {
        if let Some(origin) = &job.origin {
            result.test_id = origin.record_as.clone();
        }
        let run_id = self.run_id.clone();
        self.write(|store| store.record_attempt(&run_id, &result))?;
        let settled = self.jobs.finished(job, &result, self.stopping());
        let attempt = result.attempt;
        (self.emit)(&RunEvent::AttemptFinished { result });
        if let Some(next_attempt) = settled.retry {
            (self.emit)(&RunEvent::AttemptRetrying {
                test_id: job.test.id.clone(),
                next_attempt,
            });
            return Ok(());
        }
        debug_assert!(settled
            .verdict
            .as_ref()
            .is_none_or(|v| v.attempts == attempt));
        let stop_warning = settled.stop.map(|reason| self.stop_after(reason));
        let Some(verdict) = settled.verdict else {
            return Ok(());
        };
        let (name, variant) = (&job.test.name, job.test.variant.as_deref());
        self.write(|store| store.record_test(&run_id, &verdict, name, variant))?;
        self.summary.count(verdict.status);
        (self.emit)(&RunEvent::TestFinished { result: verdict });
        if let Some(warning) = stop_warning {
            (self.emit)(&warning);
        }
        Ok(())
    }

    /// Whether the run takes no new attempt: Ctrl-C, a full disk, or a stop at a failure.
    pub(super) fn stopping(&self) -> bool {
        self.interrupted || self.disk_full.is_some() || self.failed_fast.is_some()
    }

    /// The source stopped the run (`--fail-fast`, `--until-fail`): nothing more starts and the
    /// running attempts are killed (they are not recorded: see `collect`). Returns the warning
    /// to emit once the test's verdict is out.
    fn stop_after(&mut self, reason: String) -> RunEvent {
        let running = self.in_flight.len();
        for f in &mut self.in_flight {
            f.cancelled = true;
            f.handle.kill();
        }
        let message = format!(
            "{reason}; {running} running test{} cancelled, nothing more starts",
            if running == 1 { "" } else { "s" }
        );
        self.failed_fast = Some(message.clone());
        RunEvent::Warning { message }
    }
}
