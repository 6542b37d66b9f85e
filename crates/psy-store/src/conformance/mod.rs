//! The behaviour every [`Store`] shares, written once and run against each backend: a backend's
//! tests call [`conformance_tests!`] with a function making a fresh store, and get one `#[test]`
//! per check. Where the checks pin an order, a tie-break or an error variant, it is SQLite's.

mod durations;
mod runs;

pub(crate) use durations::*;
pub(crate) use runs::*;

use crate::{RunRecord, Store};
use psy_model::{AttemptResult, AttemptStatus, ExitInfo, RunId, TestId, TestResult, TestStatus};
use std::any::Any;
use std::path::PathBuf;

/// A fresh, empty store and whatever keeps its database alive (a temp dir, a schema).
pub(crate) struct Fixture {
    pub(crate) store: Box<dyn Store>,
    pub(crate) _guard: Box<dyn Any>,
}

/// One `#[test]` per conformance check, each on a store from `$make`, a
/// `fn() -> Option<Fixture>` (`None`: the backend is unavailable and the test is skipped).
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance::conformance_tests!(@each $make;
            a_fresh_store_is_empty,
            a_recorded_run_reads_back_as_written,
            every_status_round_trips,
            runs_are_listed_newest_first,
            runs_are_found_by_unique_prefix,
            history_is_newest_first_across_runs,
            unfinished_runs_are_aborted_with_what_was_recorded,
            a_note_says_why_a_run_ended,
            constraints_refuse_duplicates_and_unknown_runs,
            test_ids_by_prefix_are_sorted_distinct_and_bounded,
            median_of_odd_and_even_counts,
            only_the_last_twenty_by_start_time_count,
            errors_timeouts_oom_and_skips_are_ignored,
            imported_durations_fill_the_gaps_and_history_wins
        );
    };
    (@each $make:expr; $($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                let make: fn() -> Option<$crate::conformance::Fixture> = $make;
                if let Some(mut fixture) = make() {
                    $crate::conformance::$check(&mut *fixture.store);
                }
            }
        )*
    };
}
pub(crate) use conformance_tests;

pub(crate) fn id(s: &str) -> RunId {
    RunId(s.into())
}

/// A running run of 3 tests.
pub(crate) fn run(id: &str, started_at_ms: u64) -> RunRecord {
    RunRecord::running(
        RunId(id.into()),
        started_at_ms,
        "psyduck.toml",
        "psy run",
        "host-a",
        3,
    )
}

pub(crate) fn attempt(
    test: &str,
    attempt: u32,
    status: AttemptStatus,
    started_at_ms: u64,
    duration_ms: u64,
) -> AttemptResult {
    let stem = format!("{test}.{attempt}");
    AttemptResult {
        test_id: TestId(test.into()),
        attempt,
        status,
        exit: ExitInfo {
            code: Some(i32::from(status != AttemptStatus::Pass)),
            signal: None,
        },
        started_at_ms,
        duration_ms,
        cpu_time_ms: Some(duration_ms / 2),
        peak_memory_bytes: Some(1 << 20),
        io_read_bytes: Some(4096),
        io_write_bytes: Some(1 << 20),
        io_read_ops: Some(3),
        io_write_ops: Some(256),
        net_sent_bytes: Some(3000),
        net_received_bytes: Some(4000),
        image: Some("sha256:0123abcd".into()),
        stdout_path: PathBuf::from(format!("/logs/{stem}.out")),
        stderr_path: PathBuf::from(format!("/logs/{stem}.err")),
        message: None,
    }
}

pub(crate) fn verdict(test: &str, status: TestStatus, attempts: u32) -> TestResult {
    TestResult {
        test_id: TestId(test.into()),
        status,
        attempts,
        duration_ms: 10 * u64::from(attempts),
    }
}

/// Records the given outcomes as consecutive attempts of `test`, one run each, oldest first.
pub(crate) fn record_series(
    store: &mut dyn Store,
    test: &str,
    statuses_and_durations: &[(AttemptStatus, u64)],
) {
    for (i, &(status, duration)) in statuses_and_durations.iter().enumerate() {
        let run_id = RunId(format!("{test}-run-{i:03}"));
        let started = 1_000 * (i as u64 + 1);
        store.begin_run(&run(run_id.as_str(), started)).unwrap();
        store
            .record_attempt(&run_id, &attempt(test, 1, status, started, duration))
            .unwrap();
    }
}

/// The conformance suite on the memory fake.
mod memory {
    use super::Fixture;
    use crate::MemoryStore;

    super::conformance_tests!(|| Some(Fixture {
        store: Box::new(MemoryStore::new()),
        _guard: Box::new(()),
    }));
}
