//! Exit codes: 0 when everything passed, 1 when a test failed (flaky tests only with
//! `--flaky-fail`), 2 for usage and configuration errors, which record nothing.

use crate::support::{root, Project};

/// Fails on its first attempt and passes on the retry.
const FLAKY: &str = r#"
[[test]]
name = "flaky"
command = ["sh", "-c", "echo attempt $PSY_ATTEMPT; [ \"$PSY_ATTEMPT\" -ge 2 ]"]
retries = 1
"#;

#[test]
fn all_passing_exits_0() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "true"
command = ["true"]
[[test]]
name = "echo"
command = ["sh", "-c", "echo hello"]
"#,
    );
    let (out, events) = p.run_json(&[]);
    out.code(0);
    assert_eq!(events.summary()["passed"], 2, "{out}");
    assert_eq!(events.status("true"), "pass");
    assert_eq!(events.status("echo"), "pass");
}

#[test]
fn a_failing_test_exits_1() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "good"
command = ["true"]
[[test]]
name = "bad"
command = ["sh", "-c", "echo broken >&2; exit 3"]
"#,
    );
    let (out, events) = p.run_json(&[]);
    out.code(1);
    assert_eq!(events.status("good"), "pass");
    assert_eq!(events.status("bad"), "fail");
    assert_eq!(events.attempts("bad")[0]["exit"]["code"], 3);
    // The human report on stderr names the failure and shows its output.
    assert!(out.stderr.contains("bad"), "{out}");
    assert!(out.stderr.contains("broken"), "{out}");
}

#[test]
fn flaky_passes_unless_flaky_fail_or_no_retries() {
    if !root() {
        return;
    }
    let p = Project::new(FLAKY);

    let (out, events) = p.run_json(&[]);
    out.code(0);
    assert_eq!(events.status("flaky"), "flaky");
    assert_eq!(events.verdict("flaky")["attempts"], 2);
    assert_eq!(events.summary()["flaky"], 1);

    let (out, events) = p.run_json(&["--flaky-fail"]);
    out.code(1);
    assert_eq!(events.status("flaky"), "flaky");

    let (out, events) = p.run_json(&["--retries", "0"]);
    out.code(1);
    assert_eq!(events.status("flaky"), "fail");
    assert_eq!(events.verdict("flaky")["attempts"], 1);
    assert_eq!(events.of_type("attempt-retrying").count(), 0);
}

#[test]
fn config_errors_exit_2_and_record_nothing() {
    if !root() {
        return;
    }
    let p = Project::new(FLAKY);
    p.psy(&["run"]).code(0);
    let recorded = p.db_rows();
    assert_eq!(recorded, (1, 2), "one run with two attempts");

    let refused: &[&[&str]] = &[
        &["run", "no-such-test"],
        &["run", "tag:no-such-tag"],
        &["run", "--variant", "nope"],
        &["run", "-m", "missing.toml"],
        &["run", "--jobs", "0"],
        &["run", "--cpus", "0"],
    ];
    for args in refused {
        let out = p.psy(args);
        out.code(2);
        assert!(out.stdout.is_empty(), "{out}");
        assert!(out.stderr.starts_with("error: "), "{out}");
        assert_eq!(p.db_rows(), recorded, "{out}");
    }

    p.file("psyduck.toml", "[defaults]\nmemory = \"12 potatoes\"\n");
    let out = p.psy(&["run"]);
    out.code(2);
    assert_eq!(p.db_rows(), recorded, "{out}");
}

#[test]
fn a_bad_manifest_creates_no_database() {
    let p = Project::new("[[test]]\nname = \"a\"\ncommand = [\"true\"]\nretries = \"many\"\n");
    p.psy(&["run"]).code(2);
    assert!(!p.database().exists());
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let p = Project::new(FLAKY);
    let out = p.psy(&["run", "--no-such-flag"]);
    out.code(2);
    assert!(out.stderr.contains("--no-such-flag"), "{out}");
    assert!(!p.database().exists());
}
