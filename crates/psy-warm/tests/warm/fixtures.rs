//! The `basic` and `threads` fixture projects: outcomes, fixture scopes, output, environment,
//! the shared /tmp (no sandbox yet), threads, freshness, refusals and collection errors.

use crate::support::{
    self, env, fixture, plain_categories, read, run_all, start, warm, warm_categories, Warm,
};
use psy_model::AttemptStatus;
use psy_warm::suite::{request, Finished};
use psy_warm::{ChildExit, WarmError, WarmParent};
use std::collections::BTreeMap;

fn by_id(finished: &[Finished]) -> BTreeMap<&str, &Finished> {
    finished.iter().map(|f| (f.nodeid.as_str(), f)).collect()
}

#[test]
fn every_verdict_equals_plain_pytests_serial_and_two_at_a_time() {
    for parallel in [1, 2] {
        let Warm {
            dir,
            mut parent,
            env,
            files,
            probe: _probe,
        } = warm("basic", &[]);
        let finished = run_all(&mut parent, parallel, files.path());
        let warm = warm_categories(&finished);
        let plain = plain_categories(&dir, &[], &env, parent.items());
        assert_eq!(warm, plain, "{parallel} at a time");
        assert_eq!(warm.len(), 28);

        let status = |id: &str| by_id(&finished)[id].verdict.status;
        let expected = [
            ("test_outcomes.py::test_pass", AttemptStatus::Pass),
            ("test_outcomes.py::test_fail", AttemptStatus::Fail),
            ("test_outcomes.py::test_error_in_setup", AttemptStatus::Fail),
            (
                "test_outcomes.py::test_error_in_teardown",
                AttemptStatus::Fail,
            ),
            ("test_outcomes.py::test_skip_mark", AttemptStatus::Skipped),
            ("test_outcomes.py::test_skip_call", AttemptStatus::Skipped),
            ("test_outcomes.py::test_xfail", AttemptStatus::Pass),
            ("test_outcomes.py::test_xpass", AttemptStatus::Pass),
            ("test_outcomes.py::test_xpass_strict", AttemptStatus::Fail),
            ("test_outcomes.py::test_param[3]", AttemptStatus::Fail),
            (
                "test_outcomes.py::test_warning_ignored_by_mark",
                AttemptStatus::Pass,
            ),
            (
                "test_outcomes.py::test_warning_is_error",
                AttemptStatus::Fail,
            ),
        ];
        for (id, want) in expected {
            assert_eq!(status(id), want, "{id}");
        }
        // pytest's exit status in the child: 1 exactly when the item failed.
        for f in &finished {
            let failed = f.verdict.status == AttemptStatus::Fail;
            assert_eq!(f.exit, ChildExit::Code(i32::from(failed)), "{}", f.nodeid);
        }
        let skip = &by_id(&finished)["test_outcomes.py::test_skip_mark"];
        assert_eq!(
            skip.verdict.message.as_deref(),
            Some("skipped: not on this machine")
        );
        parent.shutdown().unwrap();
    }
}

#[test]
fn fixtures_of_every_scope_are_set_up_in_each_child() {
    let Warm {
        dir,
        mut parent,
        env,
        probe,
        files,
    } = warm("basic", &["test_scopes.py"]);
    let finished = run_all(&mut parent, 1, files.path());
    assert!(finished
        .iter()
        .all(|f| f.verdict.status == AttemptStatus::Pass));
    let setups = read(&probe.path().join("setups"));
    let count = |scope: &str| setups.lines().filter(|l| l.starts_with(scope)).count();
    // Two tests use each fixture: two set-ups warm, one per session, module or class in plain
    // pytest.
    assert_eq!(
        [
            count("session"),
            count("module"),
            count("class"),
            count("function")
        ],
        [2, 2, 2, 1],
        "{setups}"
    );
    let pids: Vec<&str> = setups.lines().filter_map(|l| l.split(' ').nth(1)).collect();
    assert!(!pids.contains(&parent.pid().to_string().as_str()));
    // Nothing an earlier test changed in the module reaches a later one.
    assert_eq!(read(&probe.path().join("counter")), "");
    parent.shutdown().unwrap();

    std::fs::remove_file(probe.path().join("setups")).unwrap();
    assert!(support::plain_exit(&dir, "test_scopes.py", &env).success());
    let setups = read(&probe.path().join("setups"));
    let count = |scope: &str| setups.lines().filter(|l| l.starts_with(scope)).count();
    assert_eq!(
        [count("session"), count("module"), count("class")],
        [1, 1, 1]
    );
    assert_eq!(read(&probe.path().join("counter")), "a b");
}

#[test]
fn output_goes_to_the_given_logs_and_the_environment_to_the_test() {
    let Warm {
        mut parent,
        probe,
        files,
        ..
    } = warm("basic", &["test_output.py"]);
    let finished = run_all(&mut parent, 1, files.path());
    let tests = by_id(&finished);

    let prints = tests["test_output.py::test_prints"];
    assert!(read(&prints.stdout).contains("to stdout from the test\n"));
    assert!(read(&prints.stderr).contains("to stderr from the test\n"));
    assert!(!read(&prints.stdout).contains("to stderr"));

    let fails = tests["test_output.py::test_prints_and_fails"];
    let out = read(&fails.stdout);
    assert!(out.contains("stdout before the failure"), "{out}");
    assert!(
        out.contains("AssertionError: failing after printing"),
        "{out}"
    );
    assert_eq!(fails.verdict.status, AttemptStatus::Fail);

    // The test checks PSY_TEST_ID is its own id: another one makes it fail.
    assert_eq!(
        tests["test_output.py::test_env"].verdict.status,
        AttemptStatus::Pass
    );
    assert_eq!(read(&probe.path().join("attempt")), "1 none");
    // A retry is one more fork, with its attempt number and the request's environment.
    let mut retry = request("test_output.py::test_env", 8, files.path());
    retry.attempt = 2;
    retry.env.insert("WARM_EXTRA".into(), "x".into());
    let child = parent.run(&retry).unwrap();
    assert_eq!(parent.wait(child).unwrap().exit, ChildExit::Code(0));
    assert_eq!(read(&probe.path().join("attempt")), "2 x");

    let mut wrong = request("test_output.py::test_env", 9, files.path());
    wrong.test_id = "someone-else".into();
    let child = parent.run(&wrong).unwrap();
    let ended = parent.wait(child).unwrap();
    assert_eq!(ended.exit, ChildExit::Code(1));
    assert_eq!(
        psy_warm::verdict(ended.exit, &ended.result).status,
        AttemptStatus::Fail
    );
    parent.shutdown().unwrap();
}

#[test]
fn without_the_sandbox_two_tests_share_tmp() {
    // Not isolation: the probe that must differ once the sandbox entry exists.
    let Warm {
        mut parent,
        probe,
        files,
        ..
    } = warm("basic", &["test_tmp.py"]);
    let finished = run_all(&mut parent, 1, files.path());
    assert!(finished
        .iter()
        .all(|f| f.verdict.status == AttemptStatus::Pass));
    assert_eq!(read(&probe.path().join("shared.txt")), "two");
}

#[test]
fn threads_alive_at_fork_are_reported_in_each_result() {
    let Warm {
        dir,
        mut parent,
        env,
        probe: _probe,
        files,
    } = warm("threads", &[]);
    assert_eq!(parent.threads(), ["MainThread", "import-time-worker"]);
    let finished = run_all(&mut parent, 1, files.path());
    let plain = plain_categories(&dir, &[], &env, parent.items());
    assert_eq!(warm_categories(&finished), plain);
    let outcome = finished[0].verdict.outcome.as_ref().unwrap();
    assert_eq!(outcome.warnings.len(), 1);
    assert!(
        outcome.warnings[0].contains("2 threads"),
        "{:?}",
        outcome.warnings
    );
    assert!(outcome.warnings[0].contains("import-time-worker"));
}

#[test]
fn a_changed_source_is_reported_stale() {
    let project = tempfile::tempdir().unwrap();
    for name in ["pytest.ini", "conftest.py", "test_tmp.py"] {
        std::fs::copy(fixture("basic").join(name), project.path().join(name)).unwrap();
    }
    let probe = tempfile::tempdir().unwrap();
    let parent = start(project.path(), &[], &env(probe.path()));
    let sources: Vec<_> = parent.sources().iter().map(|s| s.path.clone()).collect();
    let test_file = project.path().join("test_tmp.py").canonicalize().unwrap();
    assert!(sources.contains(&test_file), "{sources:?}");
    assert!(parent.changed_sources().is_empty());
    std::fs::write(&test_file, "def test_new():\n    pass\n").unwrap();
    assert_eq!(parent.changed_sources(), [test_file.as_path()]);
}

#[test]
fn an_unknown_node_id_is_refused_and_the_worker_serves_on() {
    let Warm {
        mut parent,
        probe: _probe,
        files,
        ..
    } = warm("basic", &["test_outcomes.py"]);
    let missing = request("test_outcomes.py::test_nothing", 0, files.path());
    match parent.run(&missing) {
        Err(WarmError::Refused { nodeid, reason, .. }) => {
            assert_eq!(nodeid, "test_outcomes.py::test_nothing");
            assert_eq!(reason, "not a collected node id");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let child = parent
        .run(&request("test_outcomes.py::test_pass", 1, files.path()))
        .unwrap();
    assert_eq!(parent.wait(child).unwrap().exit, ChildExit::Code(0));
}

#[test]
fn a_collection_error_is_a_start_error_naming_it() {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("test_broken.py"),
        "import module_that_does_not_exist\n\ndef test_x():\n    pass\n",
    )
    .unwrap();
    let probe = tempfile::tempdir().unwrap();
    let err = WarmParent::start(support::PYTHON, &[], project.path(), &env(probe.path()))
        .expect_err("collection fails");
    let message = err.to_string();
    assert!(matches!(err, WarmError::Collect { .. }), "{message}");
    assert!(message.contains("1 error during collection"), "{message}");
    assert!(message.contains("module_that_does_not_exist"), "{message}");
}

#[test]
fn without_capture_output_goes_straight_to_the_logs() {
    let Warm {
        mut parent,
        probe: _probe,
        files,
        ..
    } = warm("basic", &["-s", "test_output.py"]);
    let finished = run_all(&mut parent, 1, files.path());
    let prints = by_id(&finished)["test_output.py::test_prints"];
    assert_eq!(prints.verdict.status, AttemptStatus::Pass);
    assert!(read(&prints.stdout).contains("to stdout from the test\n"));
    assert!(read(&prints.stderr).contains("to stderr from the test\n"));
}

#[test]
fn a_collection_that_hangs_is_killed_at_its_timeout() {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("conftest.py"),
        "import threading\n\nthreading.Event().wait()\n",
    )
    .unwrap();
    std::fs::write(
        project.path().join("test_x.py"),
        "def test_x():\n    pass\n",
    )
    .unwrap();
    let probe = tempfile::tempdir().unwrap();
    let timeout = std::time::Duration::from_millis(300);
    let err = WarmParent::start_within(
        support::PYTHON,
        &[],
        project.path(),
        &env(probe.path()),
        Some(timeout),
    )
    .expect_err("collection never ends");
    assert!(
        matches!(err, WarmError::CollectTimeout { timeout: t, .. } if t == timeout),
        "{err}"
    );
}
