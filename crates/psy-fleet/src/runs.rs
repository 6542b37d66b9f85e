//! The user's side of the queue as a client sees it: submitting a run, listing runs, showing
//! and cancelling one. Client-side copies of psy-server's `queue::runs` types (the default
//! `psy` build has no psy-server); unknown fields in answers are ignored, so a newer server
//! does not break an older client.

use crate::{FleetClient, FleetError};
use std::collections::BTreeMap;

/// A run to submit (`POST /api/runs`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub priority: i32,
    pub metadata: serde_json::Value,
    pub jobs: Vec<JobRequest>,
}

/// One job of a submitted run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobRequest {
    pub test_id: String,
    /// A [`crate::JobSpec`], as JSON.
    pub spec: serde_json::Value,
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub labels: BTreeMap<String, String>,
    pub expected_ms: i64,
    pub max_attempts: i32,
}

/// How many jobs of a run are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct JobCounts {
    pub queued: i64,
    pub leased: i64,
    pub done: i64,
    pub cancelled: i64,
    pub total: i64,
}

/// A run as listed.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct RunSummary {
    pub run_id: i64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub submitter: String,
    #[serde(default)]
    pub priority: i32,
    /// `queued`, `running`, `done` or `cancelled`.
    pub state: String,
    #[serde(default)]
    pub metadata: serde_json::Value,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub jobs: JobCounts,
}

impl RunSummary {
    /// Whether the run will change no more.
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "done" | "cancelled")
    }
}

/// A job's latest result.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct JobResult {
    pub attempt: i32,
    pub status: String,
    pub duration_ms: i64,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub output_ref: Option<String>,
    #[serde(default)]
    pub agent: String,
    #[serde(default)]
    pub recorded_at: String,
}

/// A job of a shown run.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct JobView {
    pub job_id: i64,
    pub test_id: String,
    /// `queued`, `leased`, `done` or `cancelled`.
    pub state: String,
    pub attempt: i32,
    pub max_attempts: i32,
    #[serde(default)]
    pub result: Option<JobResult>,
}

/// A run with its jobs.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct RunDetail {
    pub run: RunSummary,
    pub jobs: Vec<JobView>,
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Cancelled {
    pub run_id: i64,
    pub cancelled_jobs: u64,
}

#[derive(serde::Deserialize)]
struct Submitted {
    run_id: i64,
}

impl FleetClient {
    /// Queues `run`; its id.
    pub fn submit_run(&self, run: &RunRequest) -> Result<i64, FleetError> {
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
