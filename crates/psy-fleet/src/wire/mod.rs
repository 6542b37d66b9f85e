//! The API's request and answer bodies, as JSON (serde only): the one definition the server
//! (`psy-server`) parses and answers with and the clients (`psy agent`, `psy submit`) send and
//! read, so the two cannot drift apart. The OpenAPI document the server serves describes the
//! same shapes.
//!
//! One file per group of endpoints: [`agents`] (register, list), [`leases`] (claim, heartbeat,
//! result) and [`runs`] (submit, list, show, cancel).

pub mod agents;
pub mod leases;
pub mod runs;

pub use agents::{Agent, Registration};
pub use leases::{
    BatchOutcome, BatchRecorded, ClaimRequest, Claimed, HeartbeatRequest, Lease, LeaseResult,
    Recorded, Refusal, ReleaseRequest, Released, Renewed, ResultBatch, ResultReport,
    MAX_RESULTS_PER_BATCH,
};
pub use runs::{
    Cancelled, JobCounts, JobRequest, JobResult, JobView, RunChanges, RunDetail, RunSummary,
    Submission, Submitted,
};
