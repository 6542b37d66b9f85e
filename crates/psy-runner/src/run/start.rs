//! Starting what the scheduler placed: scratch directory, log writers, environment and request
//! per attempt, then the whole batch through the executor; attempts that cannot start are
//! settled as errors at once.

use super::{io_err, now_ms, InFlight, RunError, RunLoop, Starting};
use crate::attempt::{self, AttemptPaths};
use crate::executor::ExecOutcome;
use crate::jobs::AttemptJob;
use psy_model::{AttemptKey, CpuPolicy, RunEvent, TestId, TestSpec};
use psy_scheduler::Placement;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

impl RunLoop<'_> {
    /// Starts the placed attempts as one batch (the executor may overlap their launches).
    pub(super) fn start_all(&mut self, placements: Vec<Placement>) -> Result<(), RunError> {
        let mut placed = Vec::with_capacity(placements.len());
        for placement in placements {
            match self.pending.remove(&placement.key) {
                Some(job) => placed.push((placement, job)),
                None => tracing::warn!(key = placement.key, "placed a job never offered"),
            }
        }
        // Owned here: the batch's requests borrow them while a full disk may stop the loop.
        let tests: Vec<Arc<TestSpec>> = placed.iter().map(|(_, j)| Arc::clone(&j.test)).collect();
        // What each attempt is kept under, and its project (a job's origin, else the run's).
        let origins: Vec<(TestId, PathBuf)> = placed
            .iter()
            .map(|(_, j)| match &j.origin {
                Some(o) => (o.record_as.clone(), o.project_dir.clone()),
                None => (j.test.id.clone(), self.project_dir.clone()),
            })
            .collect();
        let run_id = self.run_id.clone();
        let mut starting = Vec::with_capacity(placed.len());
        let mut requests = Vec::with_capacity(placed.len());
        let mut failed = Vec::new();
        for (((mut placement, job), test), (record_as, project_dir)) in
            placed.into_iter().zip(&tests).zip(&origins)
        {
            if self.disk_full.is_some() {
                self.drop_placed(&job);
                continue;
            }
            let on_shared_cores =
                self.cpu_policy == CpuPolicy::Exclusive && placement.cores.is_none();
            if on_shared_cores {
                placement.cores = Some(self.shared_cores.clone());
            }
            let attempt = job.attempt;
            let scratch = match self.scratch.take() {
                Ok(scratch) => scratch,
                Err(e) if self.stopped_by(&e, "creating a scratch directory") => {
                    self.drop_placed(&job);
                    continue;
                }
                Err(e) => {
                    return Err(io_err(format!(
                        "creating a scratch directory for {}",
                        test.id
                    ))(e))
                }
            };
            let key = AttemptKey {
                run_id: self.run_id.clone(),
                test_id: record_as.clone(),
                attempt,
            };
            let paths = AttemptPaths::new(self.logs, key, scratch);
            let logs = attempt::open_logs(self.logs, &paths);
            let env =
                attempt::attempt_env(&self.base_env, &self.run_id, test, attempt, &paths.scratch);
            (self.emit)(&RunEvent::AttemptStarted {
                test_id: test.id.clone(),
                attempt,
                resources: test.footprint(),
                privileged: test.sandbox.privileged,
            });
            let start = Starting {
                job,
                started_at_ms: now_ms(),
                started_at: Instant::now(),
                paths,
                on_shared_cores,
            };
            match logs.map(|logs| {
                attempt::request(
                    &run_id,
                    test,
                    record_as,
                    attempt,
                    placement,
                    env,
                    logs,
                    &start.paths.scratch,
                    project_dir,
                    &start.paths.stdout,
                )
            }) {
                Ok(request) => {
                    requests.push(request);
                    starting.push(start);
                }
                Err(message) => failed.push((start, message)),
            }
        }
        if let Some((_, message)) = failed.first() {
            // Log files that could not be made: the disk may have filled up.
            if self.disk_full.is_none() && crate::reserve::nearly_full(self.state.root()) {
                let cause = message.clone();
                self.stop_for_full_disk(&cause);
            }
        }
        let results = if self.disk_full.is_some() {
            // The disk filled up while this batch was prepared: none of it starts.
            let not_started = "not started: the disk holding .psyduck is full".to_string();
            requests.iter().map(|_| Err(not_started.clone())).collect()
        } else {
            self.executor.start_many(requests)
        };
        for (start, result) in starting.into_iter().zip(results) {
            match result {
                Ok(handle) => self.in_flight.push(InFlight {
                    // Timeouts are bounded at load; a far-future deadline beats a panic.
                    deadline: start
                        .started_at
                        .checked_add(start.job.test.timeout)
                        .unwrap_or(start.started_at + psy_model::bounds::MAX_TIMEOUT),
                    job: start.job,
                    handle,
                    started_at_ms: start.started_at_ms,
                    timed_out: false,
                    cancelled: false,
                    paths: start.paths,
                    on_shared_cores: start.on_shared_cores,
                }),
                Err(message) => failed.push((start, message)),
            }
        }
        for (start, message) in failed {
            let _ = self.scheduler.finished(start.job.key);
            self.release(&start.paths);
            let outcome = ExecOutcome {
                error: Some(message),
                ..Default::default()
            };
            let result = attempt::result(
                &start.job.test,
                start.job.attempt,
                start.started_at_ms,
                false,
                outcome,
                start.paths,
            );
            self.settle(&start.job, result)?;
        }
        Ok(())
    }

    /// A placed job that will not start: the run stopped while its batch was prepared.
    fn drop_placed(&mut self, job: &AttemptJob) {
        let _ = self.scheduler.finished(job.key);
        self.jobs.cancelled(job);
    }
}
