//! The user's side of the queue as a client calls it: submitting a run, listing runs, showing
//! and cancelling one. The bodies are the server's own ([`crate::wire::runs`]); answers ignore
//! unknown fields, so a newer server does not break an older client.

use crate::retry::{default_backoff, retry_when, USER_PATIENCE};
use crate::wire::runs::{Cancelled, RunChanges, RunDetail, RunSummary, Submission, Submitted};
use crate::{FleetClient, FleetError};
use std::time::Instant;

impl FleetClient {
    /// Queues `run`; its id. A 503 (the database failed: nothing was queued) is tried again
    /// with backoff for up to [`USER_PATIENCE`]; a server that did not answer is not (it may
    /// have queued the run, and trying again would queue it twice).
    pub fn submit_run(&self, run: &Submission) -> Result<i64, FleetError> {
        let until = Instant::now() + USER_PATIENCE;
        let submitted = retry_when(
            "submitting the run",
            &mut default_backoff(),
            &|| Instant::now() >= until,
            &|e| e.status() == Some(503),
            || self.post::<_, Submitted>("/api/runs", run),
        )?;
        Ok(submitted.run_id)
    }

    /// The newest runs, newest first.
    pub fn runs(&self) -> Result<Vec<RunSummary>, FleetError> {
        self.get("/api/runs")
    }

    /// Run `id` and its jobs.
    pub fn run(&self, id: i64) -> Result<RunDetail, FleetError> {
        self.get(&format!("/api/runs/{id}"))
    }

    /// The jobs of run `id` that changed since `after` (a cursor from the previous answer;
    /// every job without one).
    pub fn run_changes(&self, id: i64, after: Option<&str>) -> Result<RunChanges, FleetError> {
        match after {
            Some(cursor) => self.get(&format!("/api/runs/{id}/changes?after={cursor}")),
            None => self.get(&format!("/api/runs/{id}/changes")),
        }
    }

    /// Cancels run `id`.
    pub fn cancel_run(&self, id: i64) -> Result<Cancelled, FleetError> {
        self.post(&format!("/api/runs/{id}/cancel"), &serde_json::json!({}))
    }
}
