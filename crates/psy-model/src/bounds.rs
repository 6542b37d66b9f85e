//! The bounds a test's settings must keep, shared by the manifest's checks, the command line
//! and the runner: values outside them would wrap, overflow or fail only when a test starts.

use std::time::Duration;

/// Retries of one test: attempt numbers must stay far below what a job key can hold.
pub const MAX_RETRIES: u32 = 100;

/// The longest timeout of one attempt (30 days); longer ones overflow deadlines.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

/// The smallest memory limit: below it no process starts (the container's own init needs more).
pub const MIN_MEMORY_BYTES: u64 = 1 << 20;

/// The most processes a cgroup's `pids.max` accepts (the kernel's `PID_MAX_LIMIT`).
pub const MAX_PIDS: u32 = 4 * 1024 * 1024;

/// The smallest `disk` or volume: `mkfs.ext4` cannot make a smaller filesystem.
pub const MIN_FILESYSTEM_BYTES: u64 = 1 << 20;
