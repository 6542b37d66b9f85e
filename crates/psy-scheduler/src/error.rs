//! Errors of the scheduler's operations: one enum per operation, each naming the job key.

use crate::JobKey;
use thiserror::Error;

/// Why [`Scheduler::push`](crate::Scheduler::push) refused an attempt.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PushError {
    #[error(
        "job {key} requests {requested} bytes of memory but tests may use at most {available} \
         bytes on this machine"
    )]
    Memory {
        key: JobKey,
        requested: u64,
        available: u64,
    },
    #[error(
        "job {key} requests {requested} milli-cpus but tests may use at most {available} \
         milli-cpus on this machine"
    )]
    Cpu {
        key: JobKey,
        requested: u32,
        available: u32,
    },
    #[error(
        "job {key} requests {requested} milli-cpus but only {available} cores can be assigned \
         to tests (exclusive cpu policy)"
    )]
    Cores {
        key: JobKey,
        requested: u32,
        available: usize,
    },
    #[error("job {key} requests {what} {requested} but tests may use at most {available} on this machine ([host] io / [host] network)")]
    Rate {
        key: JobKey,
        what: &'static str,
        requested: u64,
        available: u64,
    },
    #[error("job {key} is already queued or running")]
    Duplicate { key: JobKey },
}

/// Why [`Scheduler::finished`](crate::Scheduler::finished) could not release an attempt.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FinishError {
    #[error("job {key} finished but the scheduler did not place it (or it already finished)")]
    NotRunning { key: JobKey },
}
