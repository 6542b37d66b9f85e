//! Psyduck's measuring tools, out of the `psy` binary: the benchmarks behind BENCHMARKS.md
//! (`psy bench ...`, each measuring psy beside its peers in the same run: the machines are
//! shared and noisy, so compare ratios, not absolute times) and `psy calibrate` (a disk's IO
//! capacity for the host file). `psy-cli` keeps only the subcommand enum that calls in here.

pub mod calibrate;
mod error;
mod harness;
pub mod isolation;
mod isolation_net;
pub mod makespan;
mod makespan_suite;
mod naive;
pub mod scenario;
pub mod shard;
pub mod spawn;
mod stats;
pub mod throughput;
pub mod unpack;
mod unpack_image;
pub mod warm;
mod warm_suite;
mod xxh64;

pub use error::UsageError;
