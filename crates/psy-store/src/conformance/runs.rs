//! Conformance checks of runs, verdicts and attempts: round trips, orders, lookups by prefix,
//! aborting runs left running, and the writes a store refuses.

use super::{attempt, id, record_series, run, verdict};
use crate::{RunRecord, RunState, Store, StoreError};
use psy_model::events::RunSummary;
use psy_model::AttemptStatus::{self, Error, Fail, Oom, Pass, Skipped, Timeout};
use psy_model::{ExitInfo, TestId, TestStatus};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

fn names(runs: Vec<RunRecord>) -> Vec<String> {
    runs.into_iter().map(|r| r.run_id.0).collect()
}

pub(crate) fn a_fresh_store_is_empty(s: &mut dyn Store) {
    assert_eq!(s.runs(10).unwrap(), vec![]);
    assert_eq!(s.latest_run().unwrap(), None);
    assert_eq!(s.run("r").unwrap(), None);
    assert_eq!(s.test_results(&id("r")).unwrap(), vec![]);
    assert_eq!(s.attempts(&id("r")).unwrap(), vec![]);
    assert!(s.history(&TestId("t".into()), 5).unwrap().is_empty());
    assert!(s.expected_durations().unwrap().is_empty());
    assert!(s.test_ids("", 10).unwrap().is_empty());
    assert_eq!(s.abort_unfinished_runs().unwrap(), 0);
}

pub(crate) fn a_recorded_run_reads_back_as_written(s: &mut dyn Store) {
    let r = id("20261126-063424-3fa2");
    s.begin_run(&run(r.as_str(), 5_000)).unwrap();
    let mut killed = attempt("b@debug", 1, Timeout, 5_100, 30_000);
    killed.exit = ExitInfo {
        code: None,
        signal: Some(9),
    };
    killed.cpu_time_ms = None;
    killed.peak_memory_bytes = None;
    killed.message = Some("killed after 30s".into());
    let attempts = [
        attempt("b@debug", 2, Pass, 35_200, 12),
        killed,
        attempt("a", 1, Fail, 5_050, 7),
    ];
    for a in &attempts {
        s.record_attempt(&r, a).unwrap();
    }
    s.record_test(
        &r,
        &verdict("b@debug", TestStatus::Flaky, 2),
        "b",
        Some("debug"),
    )
    .unwrap();
    s.record_test(&r, &verdict("a", TestStatus::Fail, 1), "a", None)
        .unwrap();
    s.record_test(&r, &verdict("c", TestStatus::Skipped, 1), "c", None)
        .unwrap();
    let summary = RunSummary {
        total: 3,
        failed: 1,
        skipped: 1,
        flaky: 1,
        duration_ms: 30_300,
        ..Default::default()
    };
    s.finish_run(&r, &summary, 35_300, RunState::Finished)
        .unwrap();

    let got = s.run(r.as_str()).unwrap().unwrap();
    let mut want = run(r.as_str(), 5_000);
    want.state = RunState::Finished;
    want.finished_at_ms = Some(35_300);
    want.summary = summary;
    assert_eq!(got, want);
    // Ordered by test id, then attempt number.
    assert_eq!(
        s.attempts(&r).unwrap(),
        vec![
            attempts[2].clone(),
            attempts[1].clone(),
            attempts[0].clone()
        ]
    );
    assert_eq!(
        s.test_results(&r).unwrap(),
        vec![
            verdict("a", TestStatus::Fail, 1),
            verdict("b@debug", TestStatus::Flaky, 2),
            verdict("c", TestStatus::Skipped, 1)
        ]
    );
}

/// Every attempt status and verdict, the largest values each column holds, a path that is
/// not UTF-8 and a message with quotes and newlines read back exactly.
pub(crate) fn every_status_round_trips(s: &mut dyn Store) {
    let r = id("r");
    s.begin_run(&run("r", 1)).unwrap();
    let statuses = [Pass, Fail, Timeout, Oom, Error, Skipped];
    let mut written = Vec::new();
    for (n, status) in statuses.into_iter().enumerate() {
        let mut a = attempt("t", n as u32 + 1, status, 10 + n as u64, 5);
        if status == Oom {
            a.exit = ExitInfo {
                code: Some(i32::MIN),
                signal: Some(i32::MAX),
            };
            a.peak_memory_bytes = Some(i64::MAX as u64);
            a.attempt = u32::MAX;
            a.stdout_path = PathBuf::from(OsStr::from_bytes(b"/logs/caf\xe9.out"));
            a.message = Some("it said \"no\"\nand 'left'".into());
        }
        if status == Skipped {
            a.cpu_time_ms = None;
            a.io_read_bytes = None;
            a.net_received_bytes = None;
        }
        s.record_attempt(&r, &a).unwrap();
        written.push(a);
    }
    written.sort_by_key(|a| a.attempt);
    assert_eq!(s.attempts(&r).unwrap(), written);
    let got: Vec<AttemptStatus> = s
        .history(&TestId("t".into()), 10)
        .unwrap()
        .into_iter()
        .map(|(_, a)| a.status)
        .collect();
    assert_eq!(got, [Skipped, Error, Oom, Timeout, Fail, Pass]);

    let verdicts = [
        TestStatus::Pass,
        TestStatus::Fail,
        TestStatus::Flaky,
        TestStatus::Timeout,
        TestStatus::Oom,
        TestStatus::Error,
        TestStatus::Skipped,
    ];
    let mut expect = Vec::new();
    for (n, status) in verdicts.into_iter().enumerate() {
        let v = verdict(&format!("v{n}"), status, n as u32 + 1);
        s.record_test(&r, &v, &format!("v{n}"), None).unwrap();
        expect.push(v);
    }
    assert_eq!(s.test_results(&r).unwrap(), expect);
    let summary = RunSummary {
        total: 8,
        passed: 1,
        failed: 2,
        flaky: 3,
        timed_out: 4,
        oom: 5,
        errors: 6,
        not_run: 7,
        skipped: 8,
        duration_ms: u64::from(u32::MAX) * 10,
    };
    s.finish_run(&r, &summary, 9, RunState::Interrupted)
        .unwrap();
    let got = s.run("r").unwrap().unwrap();
    assert_eq!((got.state, got.summary), (RunState::Interrupted, summary));
}

pub(crate) fn runs_are_listed_newest_first(s: &mut dyn Store) {
    for (name, started) in [("r2", 2_000), ("r3", 3_000), ("r1", 1_000), ("r0", 2_000)] {
        s.begin_run(&run(name, started)).unwrap();
    }
    // Equal starts: the greater id first.
    assert_eq!(names(s.runs(10).unwrap()), ["r3", "r2", "r0", "r1"]);
    assert_eq!(names(s.runs(2).unwrap()), ["r3", "r2"]);
    assert_eq!(s.latest_run().unwrap().unwrap().run_id, id("r3"));
    assert_eq!(s.latest_run().unwrap().unwrap().state, RunState::Running);
}

pub(crate) fn runs_are_found_by_unique_prefix(s: &mut dyn Store) {
    for name in [
        "20261126-0634-aaaa",
        "20261126-0634-aabb",
        "20261127-0900-cccc",
        "x",
        "xy",
        "Y",
    ] {
        s.begin_run(&run(name, 1)).unwrap();
    }
    let found = |s: &dyn Store, p: &str| s.run(p).unwrap().map(|r| r.run_id.0);
    assert_eq!(found(s, "20261127").as_deref(), Some("20261127-0900-cccc"));
    assert_eq!(
        found(s, "20261126-0634-aab").as_deref(),
        Some("20261126-0634-aabb")
    );
    assert_eq!(
        found(s, "x").as_deref(),
        Some("x"),
        "an exact id wins over longer ids it prefixes"
    );
    assert_eq!(found(s, "y"), None, "prefixes are case-sensitive");
    assert_eq!(found(s, "2025"), None);
    assert_eq!(found(s, ""), None);
    match s.run("20261126-0634-aa").unwrap_err() {
        StoreError::AmbiguousRun { candidates, .. } => {
            assert_eq!(candidates, ["20261126-0634-aaaa", "20261126-0634-aabb"])
        }
        other => panic!("expected an ambiguous prefix, got {other:?}"),
    }
}

pub(crate) fn history_is_newest_first_across_runs(s: &mut dyn Store) {
    // Runs recorded out of start order; another test's attempts interleaved.
    for (r, started) in [("r2", 2_000), ("r1", 1_000), ("r3", 3_000)] {
        s.begin_run(&run(r, started)).unwrap();
        s.record_attempt(&id(r), &attempt("t", 1, Fail, started, 5))
            .unwrap();
        s.record_attempt(&id(r), &attempt("other", 1, Pass, started + 1, 5))
            .unwrap();
    }
    s.record_attempt(&id("r3"), &attempt("t", 2, Error, 3_500, 5))
        .unwrap();
    // Same start as the previous one: the later-recorded attempt counts as newer.
    s.record_attempt(&id("r3"), &attempt("t", 3, Pass, 3_500, 5))
        .unwrap();

    let history = s.history(&TestId("t".into()), 10).unwrap();
    let seen: Vec<(String, u64, u32)> = history
        .iter()
        .map(|(r, a)| (r.0.clone(), a.started_at_ms, a.attempt))
        .collect();
    assert_eq!(
        seen,
        [
            ("r3".into(), 3_500, 3),
            ("r3".into(), 3_500, 2),
            ("r3".into(), 3_000, 1),
            ("r2".into(), 2_000, 1),
            ("r1".into(), 1_000, 1)
        ]
    );
    assert!(history.iter().all(|(_, a)| a.test_id.as_str() == "t"));
    assert_eq!(s.history(&TestId("t".into()), 2).unwrap().len(), 2);
    assert!(s.history(&TestId("nope".into()), 10).unwrap().is_empty());
}

pub(crate) fn unfinished_runs_are_aborted_with_what_was_recorded(s: &mut dyn Store) {
    s.begin_run(&run("done", 1_000)).unwrap();
    let done = RunSummary {
        total: 3,
        passed: 3,
        ..Default::default()
    };
    s.finish_run(&id("done"), &done, 2_000, RunState::Finished)
        .unwrap();
    let mut big = run("killed", 10_000);
    big.summary.total = 10;
    s.begin_run(&big).unwrap();
    s.record_attempt(&id("killed"), &attempt("a", 1, Pass, 10_000, 50))
        .unwrap();
    // The latest end is not the latest start.
    s.record_attempt(&id("killed"), &attempt("b", 1, Fail, 10_010, 400))
        .unwrap();
    s.record_attempt(&id("killed"), &attempt("c", 1, Pass, 10_020, 5))
        .unwrap();
    let verdicts = [
        ("a", TestStatus::Pass),
        ("b", TestStatus::Fail),
        ("c", TestStatus::Flaky),
        ("d", TestStatus::Timeout),
        ("e", TestStatus::Oom),
        ("f", TestStatus::Error),
        ("g", TestStatus::Skipped),
        ("h", TestStatus::Fail),
    ];
    for (test, status) in verdicts {
        s.record_test(&id("killed"), &verdict(test, status, 1), test, None)
            .unwrap();
    }
    s.begin_run(&run("empty", 20_000)).unwrap();

    assert_eq!(s.abort_unfinished_runs().unwrap(), 2);
    assert_eq!(s.abort_unfinished_runs().unwrap(), 0);

    let killed = s.run("killed").unwrap().unwrap();
    assert_eq!(
        (killed.state, killed.finished_at_ms),
        (RunState::Aborted, Some(10_410))
    );
    let expect = RunSummary {
        total: 10,
        passed: 1,
        failed: 2,
        flaky: 1,
        timed_out: 1,
        oom: 1,
        errors: 1,
        skipped: 1,
        not_run: 2,
        duration_ms: 410,
    };
    assert_eq!(killed.summary, expect);
    let empty = s.run("empty").unwrap().unwrap();
    assert_eq!(
        (empty.state, empty.finished_at_ms, empty.summary.not_run),
        (RunState::Aborted, Some(20_000), 3)
    );
    let done_now = s.run("done").unwrap().unwrap();
    assert_eq!(
        (done_now.state, done_now.summary),
        (RunState::Finished, done)
    );
}

pub(crate) fn a_note_says_why_a_run_ended(s: &mut dyn Store) {
    let r = id("r1");
    s.begin_run(&run(r.as_str(), 1_000)).unwrap();
    assert_eq!(s.run("r1").unwrap().unwrap().note, None);
    s.note_run(&r, "the disk holding .psyduck is full").unwrap();
    s.finish_run(&r, &RunSummary::default(), 2_000, RunState::Interrupted)
        .unwrap();
    let got = s.run("r1").unwrap().unwrap();
    assert_eq!(
        (got.state, got.note.as_deref()),
        (
            RunState::Interrupted,
            Some("the disk holding .psyduck is full")
        )
    );
    s.note_run(&r, "second thoughts").unwrap();
    assert_eq!(
        s.latest_run().unwrap().unwrap().note.as_deref(),
        Some("second thoughts")
    );
}

/// Duplicates and writes into unknown runs fail as [`StoreError::Query`] naming the operation;
/// finishing or noting an unknown run is [`StoreError::UnknownRun`]. Nothing is half-written.
pub(crate) fn constraints_refuse_duplicates_and_unknown_runs(s: &mut dyn Store) {
    let query = |err: StoreError, op: &str| {
        assert!(matches!(err, StoreError::Query { .. }), "{err:?}");
        assert!(err.to_string().contains(op), "{err} should name {op:?}");
        assert!(std::error::Error::source(&err).is_some(), "{err:?}");
    };
    s.begin_run(&run("r", 1)).unwrap();
    query(s.begin_run(&run("r", 2)).unwrap_err(), "starting run r");
    let a = attempt("foo", 2, Pass, 1, 1);
    s.record_attempt(&id("r"), &a).unwrap();
    let mut again = a.clone();
    again.status = Fail;
    query(
        s.record_attempt(&id("r"), &again).unwrap_err(),
        "recording attempt 2 of test foo in run r",
    );
    query(
        s.record_attempt(&id("nope"), &a).unwrap_err(),
        "recording attempt 2 of test foo in run nope",
    );
    let v = verdict("foo", TestStatus::Pass, 1);
    s.record_test(&id("r"), &v, "foo", None).unwrap();
    query(
        s.record_test(&id("r"), &verdict("foo", TestStatus::Fail, 1), "foo", None)
            .unwrap_err(),
        "recording the result of test foo in run r",
    );
    query(
        s.record_test(&id("nope"), &v, "foo", None).unwrap_err(),
        "recording the result of test foo in run nope",
    );
    let unknown = s
        .finish_run(&id("nope"), &RunSummary::default(), 5, RunState::Finished)
        .unwrap_err();
    assert!(
        matches!(unknown, StoreError::UnknownRun { .. }),
        "{unknown:?}"
    );
    assert!(
        unknown.to_string().contains("finishing run nope"),
        "{unknown}"
    );
    let unknown = s.note_run(&id("nope"), "x").unwrap_err();
    assert!(
        matches!(unknown, StoreError::UnknownRun { .. }),
        "{unknown:?}"
    );

    // What was refused left no trace.
    assert_eq!(s.attempts(&id("r")).unwrap(), vec![a]);
    assert_eq!(s.test_results(&id("r")).unwrap(), vec![v]);
    assert_eq!(names(s.runs(10).unwrap()), ["r"]);
    assert_eq!(s.run("r").unwrap().unwrap().started_at_ms, 1);
}

pub(crate) fn test_ids_by_prefix_are_sorted_distinct_and_bounded(s: &mut dyn Store) {
    // The last id holds a code point just below the range's end (U+10FFFF); "Flat" sorts
    // before every lower-case id byte-wise, whatever the locale.
    for test in [
        "flaky@release",
        "flaky@debug",
        "flat",
        "other",
        "Flat",
        "fl\u{10FFFE}x",
    ] {
        record_series(s, test, &[(Pass, 1), (Fail, 2)]);
    }
    // A verdict without attempts does not make an id known.
    s.record_test(
        &id("other-run-000"),
        &verdict("fly", TestStatus::Pass, 1),
        "fly",
        None,
    )
    .unwrap();
    let ids = |s: &dyn Store, prefix: &str, limit: usize| -> Vec<String> {
        s.test_ids(prefix, limit)
            .unwrap()
            .into_iter()
            .map(|t| t.0)
            .collect()
    };
    assert_eq!(
        ids(s, "fl", 10),
        ["flaky@debug", "flaky@release", "flat", "fl\u{10FFFE}x"]
    );
    assert_eq!(ids(s, "flaky", 1), ["flaky@debug"]);
    assert_eq!(ids(s, "", 10)[..2], ["Flat", "flaky@debug"]);
    assert_eq!(ids(s, "", 10).len(), 6);
    assert!(ids(s, "zzz", 10).is_empty());
    assert!(ids(s, "fl", 0).is_empty());
}
