//! Warm starts for pytest: a worker interpreter collects a suite once, then forks one child per
//! test; the child enters its sandbox (a hook, a no-op until the sandbox entry exists), runs
//! exactly one item through pytest's own protocol and writes its result.
//!
//! [`WarmParent`] drives the worker (`warm_worker.py`, embedded) over JSON lines on its
//! stdin/stdout; [`WarmChild`] is one forked test (a pidfd to poll and kill); [`verdict`] reads the
//! child's result into a psy [`psy_model::AttemptStatus`]. The semantics and the protocol are in
//! `docs/warm-starts.md`. Nothing here is wired into `psy run` yet.

mod child;
mod error;
mod freshness;
pub mod measure;
mod outcome;
mod parent;
mod protocol;
pub mod suite;

pub use child::{ChildExit, Ended, WarmChild};
pub use error::{ResultError, WarmError};
pub use freshness::Source;
pub use outcome::{verdict, Category, Phase, WarmOutcome, WarmVerdict};
pub use parent::WarmParent;
pub use protocol::{Entry, RunRequest};

/// The worker's source, run as `python -c WORKER_SOURCE <pytest args...>`.
/// The sandbox entry (`sandbox_entry.py`) comes first: the worker calls its functions.
pub const WORKER_SOURCE: &str = concat!(
    include_str!("sandbox_entry.py"),
    "\n",
    include_str!("warm_worker.py")
);
