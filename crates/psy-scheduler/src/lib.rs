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
//! - **Rank.** Attempts with an unknown duration go first (they may be the longest, and we learn
//!   their duration), widest first; then attempts of known duration, largest expected area
//!   first: duration x size in core-equivalents, the size being the larger of the CPU request
//!   and the memory share of the machine expressed in cores, and never less than one core. So
//!   among attempts of up to one core it is plain longest-first, while wide attempts start
//!   earlier than their duration alone would say: started last, they could not be packed
//!   around and would leave cores idle at the end of the run. Within each tier, "heavy"
//!   attempts (more than half of the memory or of the CPU budget) go first: no two of them can
//!   overlap, so they form a serial chain whose total length bounds the makespan, and starting
//!   that chain early lets light work fill in around it.
//! - **Backfill with reservations.** When the best-ranked attempts do not fit, a few of them get
//!   a reservation at the earliest time they will, from the expected ends of running attempts;
//!   a lower-ranked attempt starts now only if it fits around those reservations for its whole
//!   expected run (see `profile.rs`). Big attempts are thus not postponed to the end of the run
//!   by small ones, and the machine does not idle while they wait.
//! - **No deadlock.** [`Scheduler::push`] rejects attempts that could not run on an empty
//!   machine, so when nothing runs the best-ranked attempt always starts.

mod budget;
mod cores;
mod error;
mod profile;
mod queue;
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
