//! The user's side of the queue: `POST /api/runs`, `GET /api/runs`, `GET /api/runs/{id}` and
//! `POST /api/runs/{id}/cancel`.

use std::collections::BTreeMap;

/// A run as submitted.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    #[serde(default)]
    pub name: Option<String>,
    /// Higher runs first.
    #[serde(default)]
    pub priority: i32,
    /// Anything the submitter wants kept with the run (commit, snapshot, manifest...).
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    pub jobs: Vec<JobRequest>,
}

/// One test to run, as submitted.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// Unique within the run.
    pub test_id: String,
    /// The test's spec, handed to the agent as is.
    #[serde(default)]
    pub spec: serde_json::Value,
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    /// Labels an agent must have (all of them) to run this job.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Expected duration: longer jobs are handed out first.
    #[serde(default)]
    pub expected_ms: i64,
    /// Attempts in all, the first included (a failed attempt is retried while some are left).
    #[serde(default = "one")]
    pub max_attempts: i32,
}

fn one() -> i32 {
    1
}

/// The id of the answer to a submission.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Submitted {
    pub run_id: i64,
}

/// How many jobs of a run are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobCounts {
    pub queued: i64,
    pub leased: i64,
    pub done: i64,
    pub cancelled: i64,
    pub total: i64,
}

/// A run with its jobs counted by state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    pub run_id: i64,
    pub name: Option<String>,
    /// The name of the token that submitted it.
    pub submitter: String,
    pub priority: i32,
    /// `queued`, `running`, `done` or `cancelled`.
    pub state: String,
    pub metadata: serde_json::Value,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub jobs: JobCounts,
}

impl RunSummary {
    /// Whether the run will change no more.
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "done" | "cancelled")
    }
}

/// The latest recorded result of a job.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobResult {
    pub attempt: i32,
    pub status: String,
    pub duration_ms: i64,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub output: Option<String>,
    pub output_ref: Option<String>,
    /// The attempt's log blobs by name (see `ResultReport::logs`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub logs: BTreeMap<String, String>,
    pub agent: String,
    pub fencing_token: i64,
    pub recorded_at: String,
}

/// A job of a shown run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobView {
    pub job_id: i64,
    pub test_id: String,
    /// `queued`, `leased`, `done` or `cancelled`.
    pub state: String,
    /// The current (or last) attempt number.
    pub attempt: i32,
    pub max_attempts: i32,
    pub result: Option<JobResult>,
}

/// A run and each of its jobs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunDetail {
    pub run: RunSummary,
    pub jobs: Vec<JobView>,
}

/// The jobs of a run that changed since a cursor (`GET /api/runs/{id}/changes?after=CURSOR`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunChanges {
    pub run: RunSummary,
    /// Every job that changed since the cursor given (every job without one), and maybe some
    /// that did not: a client keeps what it already knows.
    pub jobs: Vec<JobView>,
    /// What to give as `after` next time.
    pub cursor: String,
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cancelled {
    pub run_id: i64,
    /// Jobs that will not run (queued) or whose lease was ended (leased).
    pub cancelled_jobs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_request_has_one_attempt_unless_told_and_refuses_unknown_keys() {
        let job: JobRequest = serde_json::from_value(serde_json::json!({
            "test_id": "a", "cpu_millis": 1000, "memory_bytes": 1
        }))
        .unwrap();
        assert_eq!((job.max_attempts, job.expected_ms), (1, 0));
        assert_eq!(job.spec, serde_json::Value::Null);
        assert!(serde_json::from_value::<JobRequest>(serde_json::json!({
            "test_id": "a", "cpu_millis": 1, "memory_bytes": 1, "cpus": 2
        }))
        .is_err());
    }
}
