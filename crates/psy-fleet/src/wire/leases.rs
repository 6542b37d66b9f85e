//! The agent's side of the queue: `POST /api/agents/claim`, `POST /api/leases/{id}/heartbeat`,
//! `POST /api/leases/{id}/result`, `POST /api/leases/results` (several results in one request)
//! and `POST /api/leases/{id}/release`.

use psy_model::AttemptStatus;
use std::collections::BTreeMap;

/// What an agent asks for.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The agent's name (as registered), recorded on each lease.
    pub agent: String,
    /// CPU free on the agent, in thousandths of a CPU.
    pub cpu_millis: i64,
    /// Memory free on the agent, in bytes.
    pub memory_bytes: i64,
    /// The agent's labels: a job is eligible when its labels are a subset.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// At most this many jobs.
    pub max_jobs: u32,
    /// The registration the agent got ([`Agent::registration`](super::Agent::registration)):
    /// the claim is refused (409) if the name was registered again since, by a successor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<i64>,
}

/// A job handed to an agent, under a lease.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Lease {
    pub lease_id: i64,
    /// Present it with every heartbeat and the result; a newer lease on the job has a larger one.
    pub fencing_token: i64,
    pub job_id: i64,
    pub run_id: i64,
    pub test_id: String,
    /// The attempt number this lease runs (1 for the first).
    pub attempt: i32,
    /// The test's spec, as submitted.
    pub spec: serde_json::Value,
    /// RFC 3339, UTC: heartbeat before then.
    pub expires_at: String,
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Claimed {
    pub leases: Vec<Lease>,
}

/// A heartbeat: the lease's fencing token.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub fencing_token: i64,
    /// The agent's name; when given, it must be the one the lease was granted to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// A lease renewed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Renewed {
    pub lease_id: i64,
    /// RFC 3339, UTC: the next heartbeat is due before then.
    pub expires_at: String,
}

/// How an attempt ended, as the agent saw it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResultReport {
    pub fencing_token: i64,
    /// `pass`, `fail`, `timeout`, `oom`, `error` or `skipped`.
    pub status: AttemptStatus,
    pub duration_ms: i64,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub signal: Option<i32>,
    /// The attempt's output, inline.
    #[serde(default)]
    pub output: Option<String>,
    /// Or where it was stored instead (a blob address).
    #[serde(default)]
    pub output_ref: Option<String>,
    /// The attempt's log files, uploaded as blobs first: by name, their digests. Names are
    /// the suffixes of the files beside the attempt's log: `out` and `err` (stdout and
    /// stderr), and a scenario's `scenario.jsonl` (its timeline) and `node.NAME.out`/`.err`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub logs: BTreeMap<String, String>,
    /// The agent's name; when given, it must be the one the lease was granted to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// What became of a report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recorded {
    pub job_id: i64,
    pub run_id: i64,
    /// The attempt the result was recorded for.
    pub attempt: i32,
    /// The job's state after the report: `done`, or `queued` for another attempt.
    pub job_state: String,
    /// True when this report repeated one already recorded (nothing was written).
    pub duplicate: bool,
}

/// The most results one `POST /api/leases/results` may carry.
pub const MAX_RESULTS_PER_BATCH: usize = 256;

/// Several results in one request, each under its own lease and fencing token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResultBatch {
    pub results: Vec<LeaseResult>,
}

/// One result of a [`ResultBatch`]: the lease it is reported under, and the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseResult {
    pub lease_id: i64,
    pub report: ResultReport,
}

/// What became of each result of a batch, in the batch's order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchRecorded {
    pub results: Vec<BatchOutcome>,
}

/// What became of one result of a batch: recorded (or repeated), or refused with the status
/// and message `POST /api/leases/{id}/result` would have answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BatchOutcome {
    pub lease_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Recorded>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
}

/// A refusal of one result of a batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refusal {
    /// 400, 403, 404 or 409, as for a single report.
    pub status: u16,
    pub error: String,
}

/// Gives a claimed lease back before its attempt started (the agent will not run it): its job
/// is queued again at once instead of when the lease expires. It presents what a heartbeat
/// does: the lease's fencing token, and the agent's name.
pub type ReleaseRequest = HeartbeatRequest;

/// A lease released.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Released {
    pub lease_id: i64,
    pub job_id: i64,
    /// The job's state now: `queued` (or what it already was, when releasing it again).
    pub job_state: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_with_its_status_by_name() {
        let report = ResultReport {
            fencing_token: 7,
            status: AttemptStatus::Timeout,
            duration_ms: 12,
            exit_code: None,
            signal: Some(9),
            output: Some("out".into()),
            output_ref: None,
            logs: BTreeMap::from([("out".into(), "sha256:00".into())]),
            agent: Some("a1".into()),
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["status"], "timeout");
        assert_eq!(
            serde_json::from_value::<ResultReport>(json).unwrap(),
            report
        );
        let minimal: ResultReport = serde_json::from_value(
            serde_json::json!({"fencing_token": 1, "status": "pass", "duration_ms": 0}),
        )
        .unwrap();
        assert_eq!((minimal.exit_code, minimal.output), (None, None));
    }
}
