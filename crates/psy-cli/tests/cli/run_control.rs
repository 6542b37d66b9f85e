//! Run control: `--fail-fast` (and `[run] fail-fast`), `--rerun-failed`, `--repeat`,
//! `--until-fail`, and `psy history` by name and prefix.

use crate::support::{root, Project};

/// A manifest of one quick test (`name`, running `command`) and `slow`, which would time out
/// after 20 s: a run that does not stop early records it as a timeout (and takes 20 s), which
/// the assertions catch.
pub(crate) fn quick_and_slow(name: &str, command: &str) -> String {
    format!(
        r#"
[defaults]
cpus = 0.1
[[test]]
name = "{name}"
command = ["{command}"]
[[test]]
name = "slow"
command = ["sleep", "300"]
timeout = "20s"
"#
    )
}

fn fail_fast_warning(events: &crate::support::Events) -> Option<String> {
    events
        .of_type("warning")
        .filter_map(|w| w["message"].as_str())
        .find(|m| m.starts_with("--fail-fast"))
        .map(String::from)
}

#[test]
fn fail_fast_stops_at_the_first_failure_and_says_so_in_the_store() {
    if !root() {
        return;
    }
    let p = Project::new(&quick_and_slow("bad", "false"));
    let (out, events) = p.run_json(&["--fail-fast", "-j", "2"]);
    out.code(1);
    assert_eq!(events.status("bad"), "fail", "{out}");
    assert_eq!(
        events.test_ids(),
        ["bad"],
        "slow is cancelled, not recorded\n{out}"
    );
    let warning = fail_fast_warning(&events).unwrap_or_else(|| panic!("no warning\n{out}"));
    assert!(warning.contains("bad"), "{warning}");
    assert_eq!(events.summary()["not_run"], 1, "{out}");
    let show = p.psy(&["show", events.run_id()]);
    show.code(0);
    assert!(show.stdout.contains("(Finished,"), "{show}");
    assert!(
        show.stdout
            .contains("stopped early: --fail-fast: stopping after bad"),
        "{show}"
    );
    let conn = rusqlite::Connection::open(p.database()).unwrap();
    let slow: i64 = conn
        .query_row(
            "SELECT count(*) FROM attempts WHERE test_id = 'slow'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(slow, 0, "the cancelled attempt is not recorded");
}

#[test]
fn the_manifest_turns_fail_fast_on_and_the_flag_off() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[run]
fail-fast = true
[[test]]
name = "bad"
command = ["false"]
[[test]]
name = "ok"
command = ["true"]
"#,
    );
    let (out, events) = p.run_json(&[]);
    out.code(1);
    assert!(fail_fast_warning(&events).is_some(), "{out}");
    let (out, events) = p.run_json(&["--no-fail-fast"]);
    out.code(1);
    assert!(fail_fast_warning(&events).is_none(), "{out}");
    assert_eq!(events.test_ids(), ["bad", "ok"], "{out}");
}

#[test]
fn rerun_failed_takes_the_failures_of_the_latest_run_or_of_one_run() {
    if !root() {
        return;
    }
    let p = Project::new(MANIFEST_RERUN);
    let (out, first) = p.run_json(&[]);
    out.code(1);
    let (out, events) = p.run_json(&["--rerun-failed"]);
    out.code(1);
    assert_eq!(events.test_ids(), ["bad@debug", "bad@release"], "{out}");
    assert!(
        out.stderr.contains("rerunning 2 tests that failed in run"),
        "{out}"
    );
    // Only the debug variant, of the first run.
    p.file("fixed", "");
    let arg = format!("--rerun-failed={}", first.run_id());
    let (out, events) = p.run_json(&[&arg, "--variant", "debug"]);
    out.code(0);
    assert_eq!(events.test_ids(), ["bad@debug"], "{out}");
    // The latest run had no failures: nothing runs, and psy says why.
    let (out, events) = p.run_json(&["--rerun-failed"]);
    out.code(0);
    assert!(events.0.is_empty(), "{out}");
    assert!(
        out.stderr
            .contains("had no failing tests: nothing to rerun"),
        "{out}"
    );
    let out = p.psy(&["run", "--rerun-failed=19990101"]);
    out.code(2);
    assert!(
        out.stderr.contains("--rerun-failed=19990101: no such run"),
        "{out}"
    );
}

const MANIFEST_RERUN: &str = r#"
[[test]]
name = "ok"
command = ["true"]
[[test]]
name = "bad"
command = ["sh", "-c", "test -e fixed"]
[[variant]]
name = "debug"
[[variant]]
name = "release"
"#;

/// A test that fails in exactly the attempts listed in `$FAIL_ON` (space separated).
const FAILS_ON: &str = r#"
[[test]]
name = "stress"
command = ["sh", "-c", "case \" $FAIL_ON \" in *\" $PSY_ATTEMPT \"*) exit 1;; esac"]
env = { FAIL_ON = "FAILS" }
"#;

fn attempts(events: &crate::support::Events) -> Vec<(u64, String)> {
    events
        .attempts("stress")
        .iter()
        .map(|a| {
            (
                a["attempt"].as_u64().unwrap(),
                a["status"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn repeat_records_every_repetition_and_keeps_the_worst_verdict() {
    if !root() {
        return;
    }
    let p = Project::new(&FAILS_ON.replace("FAILS", ""));
    let (out, events) = p.run_json(&["--repeat", "3"]);
    out.code(0);
    assert_eq!(events.status("stress"), "pass");
    assert_eq!(events.verdict("stress")["attempts"], 3, "{out}");
    let history = p.psy(&["history", "stress"]);
    assert_eq!(
        history.stdout.lines().count(),
        4,
        "header and 3 attempts\n{history}"
    );

    // Repetition 2 fails on attempt 2 and passes on its retry (3): flaky over the repetitions.
    let p = Project::new(&FAILS_ON.replace("FAILS", "2"));
    let (out, events) = p.run_json(&["--repeat", "3", "--retries", "1"]);
    out.code(0);
    let pass = |n: u64| (n, "pass".to_string());
    assert_eq!(
        attempts(&events),
        [pass(1), (2, "fail".into()), pass(3), pass(4)],
        "{out}"
    );
    assert_eq!(events.status("stress"), "flaky", "{out}");

    // Without the retry the failing repetition decides, and later ones still run; the reports
    // explain the verdict with that repetition, not with the passing one after it.
    let (out, events) = p.run_json(&["--repeat", "3", "--junit", "junit.xml"]);
    out.code(1);
    assert_eq!(
        attempts(&events),
        [pass(1), (2, "fail".into()), pass(3)],
        "{out}"
    );
    assert_eq!(events.status("stress"), "fail");
    assert!(out.stderr.contains("stress (attempt 2/3, exit 1)"), "{out}");
    let junit = std::fs::read_to_string(p.dir().join("junit.xml")).unwrap();
    assert!(
        junit.contains("message=\"attempt 2: fail, exit 1\""),
        "{junit}"
    );

    let out = p.psy(&["run", "--repeat", "0"]);
    out.code(2);
    assert!(out.stderr.contains("--repeat 0"), "{out}");
}

#[test]
fn until_fail_stops_at_the_first_failing_repetition() {
    if !root() {
        return;
    }
    let p = Project::new(&FAILS_ON.replace("FAILS", "4"));
    let (out, events) = p.run_json(&["--until-fail"]);
    out.code(1);
    assert_eq!(events.verdict("stress")["attempts"], 4, "{out}");
    assert_eq!(events.status("stress"), "fail");
    // Bounded by --repeat: all pass within the bound.
    let (out, events) = p.run_json(&["--until-fail", "--repeat", "3"]);
    out.code(0);
    assert_eq!(events.verdict("stress")["attempts"], 3, "{out}");
}

#[test]
fn history_matches_variants_and_unique_prefixes() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "flaky"
command = ["true"]
[[test]]
name = "flat"
command = ["true"]
[[variant]]
name = "debug"
[[variant]]
name = "release"
"#,
    );
    p.run_json(&[]).0.code(0);
    // The name, a prefix, and a part of it (as `psy run`'s filters match).
    for query in ["flaky", "flak", "laky"] {
        let out = p.psy(&["history", query]);
        out.code(0);
        let tests: Vec<&str> = out
            .stdout
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        assert_eq!(tests.len(), 2, "{out}");
        assert!(
            tests.contains(&"flaky@debug") && tests.contains(&"flaky@release"),
            "{out}"
        );
    }
    let out = p.psy(&["history", "flaky@release"]);
    out.code(0);
    assert_eq!(out.stdout.lines().count(), 2, "{out}");
    let out = p.psy(&["log", "laky@rel", "--stdout"]);
    out.code(0);
    let out = p.psy(&["history", "fl"]);
    out.code(2);
    assert!(
        out.stderr
            .contains("\"fl\" matches several tests: flaky, flat"),
        "{out}"
    );
}
