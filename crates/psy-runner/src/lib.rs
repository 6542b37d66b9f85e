//! The engine that `psy run` (and the coming `psy agent`) drive: [`engine`] prepares a run on
//! this host (lock, clean-up, capacity, sandbox, executor); the run loop ([`run()`]) takes
//! attempts from a [`jobs::JobSource`], schedules them onto the machine, executes them through
//! an [`executor::Executor`], records every attempt in a [`psy_store::Store`] before reporting
//! it, keeps their output as blobs in a [`psy_model::LogStore`] ([`logs`]), and emits
//! [`psy_model::RunEvent`]s for any number of consumers.

mod adapter;
mod attempt;
pub mod capacity;
pub mod clock;
pub mod engine;
mod estimate;
pub mod executor;
mod image_user;
pub mod images;
mod interrupt;
pub mod jobs;
pub mod layout;
pub mod logs;
mod reserve;
pub mod run;
mod scratch;
pub mod select;
pub mod shard;

pub use jobs::{RunControl, MAX_ATTEMPTS_PER_TEST};
pub use run::{run, RunError, RunOutcome, RunSettings};
