//! The user's side of the queue as a client calls it: submitting a run, listing runs, showing
//! and cancelling one. The bodies are the server's own ([`crate::wire::runs`]); answers ignore
//! unknown fields, so a newer server does not break an older client.

use crate::wire::runs::{Cancelled, RunDetail, RunSummary, Submission, Submitted};
use crate::{FleetClient, FleetError};

impl FleetClient {
    /// Queues `run`; its id.
    pub fn submit_run(&self, run: &Submission) -> Result<i64, FleetError> {
        Ok(self.post::<_, Submitted>("/api/runs", run)?.run_id)
    }

    /// The newest runs, newest first.
    pub fn runs(&self) -> Result<Vec<RunSummary>, FleetError> {
        self.get("/api/runs")
    }

    /// Run `id` and its jobs.
    pub fn run(&self, id: i64) -> Result<RunDetail, FleetError> {
        self.get(&format!("/api/runs/{id}"))
    }

    /// Cancels run `id`.
    pub fn cancel_run(&self, id: i64) -> Result<Cancelled, FleetError> {
        self.post(&format!("/api/runs/{id}/cancel"), &serde_json::json!({}))
    }
}
