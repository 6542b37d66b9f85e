//! Psyduck's results store: runs, per-test verdicts and every attempt, behind the [`Store`] trait.
//!
//! The embedded default is [`SqliteStore`] (one file at `<project>/.psyduck/psyduck.db`); the trait
//! speaks only `psy-model` types and [`StoreError`] so a PostgreSQL implementation can sit beside it
//! without the runner or the CLI noticing.

mod columns;
#[cfg(test)]
mod conformance;
mod error;
mod expected;
pub mod memory;
mod ops;
mod record;
pub mod sqlite;
mod store;

pub use error::{BackendError, StoreError};
pub use memory::MemoryStore;
pub use record::{RunRecord, RunState};
pub use sqlite::SqliteStore;
pub use store::{Store, HISTORY_WINDOW};
