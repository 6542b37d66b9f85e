//! Pure placement for `psy run`: given the machine's capacity and the waiting attempts, decide
//! which attempts start now. No I/O, no clock reads, no threads: the caller passes the time.
//!
//! The runner calls [`Scheduler::next_placements`] whenever something changes (run start, an
//! attempt finished, a retry was pushed) and starts exactly what it returns.
//!
//! How attempts are chosen:
//! - **Guarantees are never oversubscribed.** The sum of the `cpu_millis` and `memory_bytes` of
//!   running attempts stays within the [`Capacity`](psy_model::Capacity) (and the user's
//!   [`Limits`]), so two attempts that each need 70% of memory never run together.
//! - **Rank.** Attempts with an unknown duration go first (they may be the longest and we learn
//!   their duration), then the longest expected first. Within each of those two tiers, "heavy"
//!   attempts (more than half of the memory or of the CPU budget) go before light ones: no two
//!   heavy attempts of the same resource can overlap, so they form a serial chain whose total
//!   length bounds the makespan; starting that chain early lets light work fill around it.
//! - **Backfill with a reservation.** When the best-ranked attempt (the head) does not fit,
//!   lower-ranked ones may still start, but only if they cannot delay the head (see
//!   `reservation.rs`), so big attempts are not postponed to the end of the run by small ones.
//! - **No deadlock.** [`Scheduler::push`] rejects attempts that could not run on an empty
//!   machine, so when nothing runs the head always fits.

mod budget;
mod cores;
mod error;
mod queue;
mod reservation;
mod scheduler;
pub mod simulate;

#[cfg(test)]
mod tests;

use psy_model::Resources;
use std::time::Duration;

pub use error::{FinishError, PushError};
pub use scheduler::Scheduler;

/// The caller's handle for one attempt (for example an index into its list of attempts).
/// Keys must be unique among queued and running attempts; a retry may reuse a finished key.
pub type JobKey = u64;

/// One attempt waiting to be placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub key: JobKey,
    /// What the attempt is guaranteed; only `cpu_millis` and `memory_bytes` are packed
    /// (`tmp_bytes` is charged to the memory limit, `pids` is not a machine-wide resource).
    pub resources: Resources,
    /// Expected duration (e.g. the median of past attempts); `None` when unknown.
    pub expected: Option<Duration>,
}

/// An attempt the caller should start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub key: JobKey,
    /// Under [`CpuPolicy::Exclusive`](psy_model::CpuPolicy::Exclusive), the core ids held
    /// exclusively by a whole-core request; `None` for fractional requests (which share
    /// [`Scheduler::shared_cores`]) and under the shared policy.
    pub cores: Option<Vec<u32>>,
}

/// User caps on top of the machine's capacity (`--jobs`, `--cpus`).
///
/// Caps never make an attempt unrunnable: an attempt requesting more CPU than `cpu_cap_millis`
/// is charged the whole cap, so it runs with no other CPU-requesting attempt beside it (it
/// still gets its full request from the machine; the cap limits packing, not the container).
/// A cap of zero is treated as the smallest useful cap (1 job, 1 milli-cpu).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// At most this many attempts run at once.
    pub max_jobs: Option<usize>,
    /// The sum of the CPU requests of running attempts stays below this (milli-cpus).
    pub cpu_cap_millis: Option<u32>,
}
