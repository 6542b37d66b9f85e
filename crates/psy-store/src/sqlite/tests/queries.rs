//! Round trips through the trait: recording a run, listing runs, looking one up by prefix,
//! one test's history, and aborting runs left running.

use super::{attempt, record_series, run, store};
use crate::{RunState, Store, StoreError};
use psy_model::events::RunSummary;
use psy_model::AttemptStatus::{Error, Fail, Pass, Timeout};
use psy_model::{ExitInfo, RunId, TestId, TestResult, TestStatus};

fn id(s: &str) -> RunId {
    RunId(s.into())
}

fn verdict(test: &str, status: TestStatus, attempts: u32) -> TestResult {
    TestResult {
        test_id: TestId(test.into()),
        status,
        attempts,
        duration_ms: 10 * u64::from(attempts),
    }
}

#[test]
fn a_recorded_run_reads_back_as_written() {
    let (_dir, mut s) = store();
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
    assert_eq!(
        (got.state, got.finished_at_ms, &got.summary),
        (RunState::Finished, Some(35_300), &summary)
    );
    assert_eq!(
        (got.manifest.as_str(), got.host.as_str()),
        ("psyduck.toml", "host-a")
    );
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

#[test]
fn runs_are_listed_newest_first() {
    let (_dir, mut s) = store();
    assert_eq!(s.latest_run().unwrap(), None);
    for (name, started) in [("r2", 2_000), ("r3", 3_000), ("r1", 1_000)] {
        s.begin_run(&run(name, started)).unwrap();
    }
    let names =
        |runs: Vec<crate::RunRecord>| runs.into_iter().map(|r| r.run_id.0).collect::<Vec<_>>();
    assert_eq!(names(s.runs(10).unwrap()), ["r3", "r2", "r1"]);
    assert_eq!(names(s.runs(2).unwrap()), ["r3", "r2"]);
    assert_eq!(s.latest_run().unwrap().unwrap().run_id, id("r3"));
    assert_eq!(s.latest_run().unwrap().unwrap().state, RunState::Running);
}

#[test]
fn runs_are_found_by_unique_prefix() {
    let (_dir, mut s) = store();
    for name in [
        "20261126-0634-aaaa",
        "20261126-0634-aabb",
        "20261127-0900-cccc",
        "x",
        "xy",
    ] {
        s.begin_run(&run(name, 1)).unwrap();
    }
    let found = |p: &str| s.run(p).unwrap().map(|r| r.run_id.0);
    assert_eq!(found("20261127").as_deref(), Some("20261127-0900-cccc"));
    assert_eq!(
        found("20261126-0634-aab").as_deref(),
        Some("20261126-0634-aabb")
    );
    assert_eq!(
        found("x").as_deref(),
        Some("x"),
        "an exact id wins over longer ids it prefixes"
    );
    assert_eq!(found("2025"), None);
    assert_eq!(found(""), None);
    match s.run("20261126-0634-aa").unwrap_err() {
        StoreError::AmbiguousRun { candidates, .. } => {
            assert_eq!(candidates, ["20261126-0634-aaaa", "20261126-0634-aabb"])
        }
        other => panic!("expected an ambiguous prefix, got {other:?}"),
    }
}

#[test]
fn history_is_newest_first_across_runs() {
    let (_dir, mut s) = store();
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

#[test]
fn unfinished_runs_are_aborted_with_what_was_recorded() {
    let (_dir, mut s) = store();
    s.begin_run(&run("done", 1_000)).unwrap();
    s.finish_run(
        &id("done"),
        &RunSummary {
            total: 3,
            passed: 3,
            ..Default::default()
        },
        2_000,
        RunState::Finished,
    )
    .unwrap();
    s.begin_run(&run("killed", 10_000)).unwrap(); // total 3
    s.record_attempt(&id("killed"), &attempt("a", 1, Pass, 10_000, 50))
        .unwrap();
    s.record_attempt(&id("killed"), &attempt("b", 1, Fail, 10_010, 400))
        .unwrap();
    s.record_test(&id("killed"), &verdict("a", TestStatus::Pass, 1), "a", None)
        .unwrap();
    s.record_test(&id("killed"), &verdict("b", TestStatus::Fail, 1), "b", None)
        .unwrap();
    s.begin_run(&run("empty", 20_000)).unwrap();

    assert_eq!(s.abort_unfinished_runs().unwrap(), 2);
    assert_eq!(s.abort_unfinished_runs().unwrap(), 0);

    let killed = s.run("killed").unwrap().unwrap();
    assert_eq!(
        (killed.state, killed.finished_at_ms),
        (RunState::Aborted, Some(10_410))
    );
    let expect = RunSummary {
        total: 3,
        passed: 1,
        failed: 1,
        not_run: 1,
        duration_ms: 410,
        ..Default::default()
    };
    assert_eq!(killed.summary, expect);
    let empty = s.run("empty").unwrap().unwrap();
    assert_eq!(
        (empty.state, empty.finished_at_ms),
        (RunState::Aborted, Some(20_000))
    );
    assert_eq!(s.run("done").unwrap().unwrap().state, RunState::Finished);
}

#[test]
fn errors_name_the_database_and_the_operation() {
    let (dir, mut s) = store();
    s.begin_run(&run("r", 1)).unwrap();
    let a = attempt("foo", 2, Pass, 1, 1);
    s.record_attempt(&id("r"), &a).unwrap();
    let err = s.record_attempt(&id("r"), &a).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("recording attempt 2 of test foo in run r"),
        "{msg}"
    );
    assert!(
        msg.contains(&dir.path().join(".psyduck/psyduck.db").display().to_string()),
        "{msg}"
    );
    assert!(
        std::error::Error::source(&err)
            .unwrap()
            .to_string()
            .contains("UNIQUE"),
        "{err:?}"
    );

    let orphan = s.record_attempt(&id("no-such-run"), &a).unwrap_err();
    assert!(matches!(orphan, StoreError::Query { .. }), "{orphan:?}");
    let unknown = s
        .finish_run(
            &id("no-such-run"),
            &RunSummary::default(),
            5,
            RunState::Finished,
        )
        .unwrap_err();
    assert!(
        matches!(unknown, StoreError::UnknownRun { .. }),
        "{unknown:?}"
    );
}

#[test]
fn corrupted_values_are_reported_not_guessed() {
    let (_dir, mut s) = store();
    s.begin_run(&run("r", 1)).unwrap();
    s.record_attempt(&id("r"), &attempt("t", 1, Pass, 1, 1))
        .unwrap();
    s.conn
        .execute("UPDATE attempts SET status = 'maybe'", [])
        .unwrap();
    match s.attempts(&id("r")).unwrap_err() {
        StoreError::InvalidValue { column, value, .. } => {
            assert_eq!((column, value.as_str()), ("attempts.status", "\"maybe\""))
        }
        other => panic!("expected an invalid value, got {other:?}"),
    }
}

#[test]
fn a_note_says_why_a_run_ended() {
    let (_dir, mut s) = store();
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
    assert!(matches!(
        s.note_run(&id("nope"), "x"),
        Err(StoreError::UnknownRun { .. })
    ));
}

#[test]
fn full_disks_are_told_apart() {
    let full =
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None);
    let query = |source: crate::error::BackendError| StoreError::Query {
        database: "db".into(),
        op: "x".into(),
        source,
    };
    assert!(query(full.into()).is_disk_full());
    let enospc = std::io::Error::from_raw_os_error(28);
    assert!(query(enospc.into()).is_disk_full());
    let busy =
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
    assert!(!query(busy.into()).is_disk_full());
}

#[test]
fn test_ids_by_prefix_are_sorted_distinct_and_bounded() {
    let (_dir, mut s) = store();
    // The last id holds a code point just below the range's end (U+10FFFF).
    for test in [
        "flaky@release",
        "flaky@debug",
        "flat",
        "other",
        "fl\u{10FFFE}x",
    ] {
        record_series(&mut s, test, &[(Pass, 1), (Fail, 2)]);
    }
    let ids = |prefix: &str, limit: usize| -> Vec<String> {
        s.test_ids(prefix, limit)
            .unwrap()
            .into_iter()
            .map(|t| t.0)
            .collect()
    };
    assert_eq!(
        ids("fl", 10),
        ["flaky@debug", "flaky@release", "flat", "fl\u{10FFFE}x"]
    );
    assert_eq!(ids("flaky", 1), ["flaky@debug"]);
    assert_eq!(ids("", 10).len(), 5);
    assert!(ids("zzz", 10).is_empty());
}
