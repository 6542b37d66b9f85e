//! Psyduck's results store: runs, per-test verdicts and every attempt, behind the [`Store`] trait.
//!
//! The embedded default is [`SqliteStore`] (one file at `<project>/.psyduck/psyduck.db`);
//! `PgStore` (feature `postgres`) keeps the same facts in PostgreSQL for a fleet, and
//! [`MemoryStore`] is a fake for unit tests. The trait speaks only `psy-model` types and
//! [`StoreError`], and one conformance suite holds all three to the same behaviour.

mod columns;
#[cfg(test)]
mod conformance;
mod error;
mod expected;
pub mod memory;
mod ops;
#[cfg(feature = "postgres")]
pub mod postgres;
mod record;
pub mod sqlite;
mod store;

pub use error::{BackendError, StoreError};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
pub use record::{RunRecord, RunState};
pub use sqlite::SqliteStore;
pub use store::{Store, HISTORY_WINDOW};
