//! Snapshots: what `psy submit` sends to the fleet and what an agent runs tests in.
//!
//! A [`Snapshot`] is a working tree as a sorted list of [`Entry`]s (path, kind, mode, size and
//! the sha256 of the content); its own digest, the sha256 of its canonical JSON, names it.
//! Contents travel separately as blobs addressed by their digest, so a file that did not change
//! since the last submit is not sent again.
//!
//! - [`Snapshot::of_worktree`] (submitter): the files git tracks plus uncommitted changes plus
//!   untracked files git does not ignore; `.psyduck/` never.
//! - [`materialise`] (agent): writes a snapshot's tree once per machine, atomically, fetching
//!   each blob once through a [`BlobSource`] into a local blob cache.
//! - [`Prepared::ensure`] (agent): materialises, loads the job's manifest, and runs its
//!   `[prepare]` command once per snapshot and agent, caching the result.
//!
//! No HTTP here: the agent passes a [`BlobSource`] over its server connection (psy-fleet's).

mod build;
mod cache;
mod digest;
mod error;
mod layout;
mod materialise;
mod prepare;
mod snapshot;
#[doc(hidden)]
pub mod testkit;

pub use build::{project_root, LocalSnapshot};
pub use cache::BlobCache;
pub use digest::{is_digest, sha256};
pub use error::{BoxError, SnapshotError};
pub use layout::WorkDir;
pub use materialise::{materialise, BlobSource};
pub use prepare::{PrepareOutcome, Prepared};
pub use snapshot::{Entry, EntryKind, Snapshot, FORMAT_VERSION};
