//! Why a queue operation was refused or failed: each refusal names the run, job or lease.

use crate::ServerError;

/// A refusal (to be answered with its status) or a database failure.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The request does not make sense (400).
    #[error("{0}")]
    Invalid(String),
    /// The lease was granted to another agent or token (403).
    #[error("{0}")]
    Forbidden(String),
    /// The run or lease does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The lease moved on, the token is stale, or a different result was already recorded (409).
    #[error("{0}")]
    Conflict(String),
    /// The database failed (503).
    #[error(transparent)]
    Database(#[from] ServerError),
}
