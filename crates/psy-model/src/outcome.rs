//! Results of attempts and tests.

use crate::TestId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptStatus {
    Pass,
    Fail,
    /// Killed after exceeding its timeout.
    Timeout,
    /// Killed by the memory limit.
    Oom,
    /// Psyduck could not run it (sandbox setup failed, command not found...).
    Error,
    /// The test's own runner did not run it (`#[ignore]`, `pytest.skip`), as the adapter read
    /// from the runner's result.
    Skipped,
}

/// The verdict on a test after all its attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestStatus {
    Pass,
    Fail,
    /// Failed at least once, then passed on a retry.
    Flaky,
    Timeout,
    Oom,
    Error,
    /// Not run by the test's own runner (`#[ignore]`, `pytest.skip`): neither passed nor failed.
    Skipped,
}

impl AttemptStatus {
    /// Whether the attempt settles its test without a retry (it passed, or was not run).
    pub fn is_final_success(self) -> bool {
        matches!(self, AttemptStatus::Pass | AttemptStatus::Skipped)
    }
}

impl TestStatus {
    /// Whether the test counts as passed (flaky does unless the user asks otherwise).
    pub fn is_success(self, flaky_fails: bool) -> bool {
        match self {
            TestStatus::Pass | TestStatus::Skipped => true,
            TestStatus::Flaky => !flaky_fails,
            _ => false,
        }
    }

    /// The verdict when the last attempt ended with `last` after `attempts` tries.
    pub fn from_last_attempt(last: AttemptStatus, attempts: u32) -> Self {
        match last {
            AttemptStatus::Pass if attempts > 1 => TestStatus::Flaky,
            AttemptStatus::Pass => TestStatus::Pass,
            AttemptStatus::Fail => TestStatus::Fail,
            AttemptStatus::Timeout => TestStatus::Timeout,
            AttemptStatus::Oom => TestStatus::Oom,
            AttemptStatus::Error => TestStatus::Error,
            AttemptStatus::Skipped => TestStatus::Skipped,
        }
    }
}

macro_rules! status_strings {
    ($ty:ty { $($variant:ident => $s:literal),* $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $s),* }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(Self::$variant),)*
                    other => Err(format!("unknown status {other:?}")),
                }
            }
        }
    };
}

status_strings!(AttemptStatus { Pass => "pass", Fail => "fail", Timeout => "timeout", Oom => "oom", Error => "error", Skipped => "skipped" });
status_strings!(TestStatus { Pass => "pass", Fail => "fail", Flaky => "flaky", Timeout => "timeout", Oom => "oom", Error => "error", Skipped => "skipped" });

/// How the test's process ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal number, if a signal killed it.
    pub signal: Option<i32>,
}

/// One finished attempt, as stored and reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptResult {
    pub test_id: TestId,
    /// 1 for the first try, 2 for the first retry, ...
    pub attempt: u32,
    pub status: AttemptStatus,
    pub exit: ExitInfo,
    /// Start time, milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// Wall-clock duration.
    pub duration_ms: u64,
    /// CPU time (user + system) measured by the cgroup, if available.
    pub cpu_time_ms: Option<u64>,
    /// Peak memory use measured by the cgroup, if available.
    pub peak_memory_bytes: Option<u64>,
    /// Bytes read from / written to disk, measured by the cgroup when the test has IO limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_read_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_write_bytes: Option<u64>,
    /// Read / write requests that reached the device, counted by the cgroup (tests with `io`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_read_ops: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_write_ops: Option<u64>,
    /// Bytes sent / received on the test's own network interface (tests with `network`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_sent_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_received_bytes: Option<u64>,
    /// The image the attempt ran in (`sha256:...` of its manifest, or `dir:PATH` for a root
    /// filesystem directory); `None`: the host's root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    /// Why Psyduck could not run it (for `error`), or extra detail.
    pub message: Option<String>,
}

/// The verdict on one test id after all its attempts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub test_id: TestId,
    pub status: TestStatus,
    pub attempts: u32,
    /// Sum of the attempts' durations.
    pub duration_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(
            TestStatus::from_last_attempt(AttemptStatus::Pass, 1),
            TestStatus::Pass
        );
        assert_eq!(
            TestStatus::from_last_attempt(AttemptStatus::Pass, 2),
            TestStatus::Flaky
        );
        assert_eq!(
            TestStatus::from_last_attempt(AttemptStatus::Oom, 3),
            TestStatus::Oom
        );
        assert!(TestStatus::Flaky.is_success(false));
        assert!(!TestStatus::Flaky.is_success(true));
        assert_eq!("flaky".parse::<TestStatus>(), Ok(TestStatus::Flaky));
        assert_eq!(AttemptStatus::Oom.to_string(), "oom");
        assert_eq!(
            TestStatus::from_last_attempt(AttemptStatus::Skipped, 1),
            TestStatus::Skipped
        );
        assert!(TestStatus::Skipped.is_success(true));
        assert!(AttemptStatus::Skipped.is_final_success());
        assert!(!AttemptStatus::Fail.is_final_success());
        assert_eq!(
            "skipped".parse::<AttemptStatus>(),
            Ok(AttemptStatus::Skipped)
        );
    }
}
