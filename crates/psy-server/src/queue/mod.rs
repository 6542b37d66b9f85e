//! The fleet's work queue in PostgreSQL: runs of jobs submitted by users, claimed by agents
//! under leases, and their results.
//!
//! The rules, each enforced by the database so that any number of servers can serve them:
//! - a claim is one transaction taking queued jobs `FOR UPDATE SKIP LOCKED` ([`claim`]), so no
//!   two agents ever get the same job;
//! - a lease carries a fencing token from a sequence; a heartbeat or a result must present it
//!   ([`lease`], [`report`]);
//! - a lease that expired stays valid until another claim reclaims its job (the claim counts
//!   the expiry); from then on its heartbeats and results are refused;
//! - a result is recorded exactly once per attempt; an identical report again is answered as
//!   the first was;
//! - an agent registering again under its name takes it over: the previous registration's
//!   leases end at once and its claims are refused ([`takeover`]);
//! - a lease given back before its attempt started ([`release`]) queues its job again at once,
//!   for the same attempt; from then on it is refused like an expired one.

pub mod claim;
pub mod error;
pub mod lease;
pub mod pack;
pub mod release;
pub mod report;
pub mod runs;
pub mod schema;
pub mod stats;
pub mod takeover;

pub use error::QueueError;

/// A timestamp column as RFC 3339 text in UTC with milliseconds (no date crate needed).
pub(crate) fn ts(column: &str) -> String {
    format!(r#"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#)
}
