//! The fleet's client side: what `psy agent` and `psy submit` (and `psy runs`, `psy cancel`,
//! `psy show --server`) share to talk to a `psy server`.
//!
//! [`wire`] holds the API's request and answer bodies, shared with the server.
//!
//! Blocking on purpose: the engine that runs tests is thread-based, and the few calls an agent
//! makes per attempt do not justify an async runtime in the default build.

mod client;
mod error;
mod job;
pub mod retry;
mod runs;
mod snapshot;
mod snapshots;
pub mod wire;

pub use client::{FleetClient, ServerUrl};
pub use error::FleetError;
pub use job::{JobSpec, ProjectSource};
pub use snapshot::{SnapshotError, SnapshotMaterialiser};
pub use snapshots::{upload, ServerBlobs, ServerSnapshots, UploadError, Uploaded};
pub use wire::runs::{
    Cancelled, JobCounts, JobRequest, JobResult, JobView, RunChanges, RunDetail, RunSummary,
    Submission,
};
