//! What `psy run` shows of tests' output (`--failure-output`, `--success-output`, `[report]`),
//! how much it says (`-q`, `-v`), and reading logs back with `psy log` and `psy show RUN TEST`.

use crate::support::{root, Project};

/// A failing test whose output starts with the panic message, goes on far past the 256 KiB
/// cap, and ends with the end of a backtrace.
const LONG_FAILURE: &str = r#"
[[test]]
name = "panics"
command = ["sh", "-c", "echo 'panicked at src/lib.rs:1: left != right' >&2; i=0; while [ $i -lt 40000 ]; do echo \"frame $i of a long backtrace\" >&2; i=$((i+1)); done; echo 'end of the backtrace' >&2; exit 101"]

[[test]]
name = "passes"
command = ["sh", "-c", "echo 'passing output'"]
"#;

#[test]
fn long_failure_output_keeps_its_head_and_its_tail() {
    if !root() {
        return;
    }
    let p = Project::new(LONG_FAILURE);
    let out = p.psy(&["run"]);
    out.code(1);
    let err = &out.stderr;
    // Shown as the test fails and again at the end (immediate-final).
    assert_eq!(err.matches("panicked at src/lib.rs:1").count(), 2, "{out}");
    assert_eq!(err.matches("\nend of the backtrace\n").count(), 2, "{out}");
    assert!(err.contains("frame 0 of a long backtrace\n"), "{out}");
    assert!(err.contains("frame 39999 of a long backtrace\n"), "{out}");
    assert!(!err.contains("frame 20000 of a long backtrace\n"), "{out}");
    let marker = err
        .lines()
        .find(|l| l.starts_with("    ... ") && l.contains(" lines omitted ("))
        .unwrap_or_else(|| panic!("no omitted marker:\n{out}"));
    assert!(marker.ends_with("panics.1.err ..."), "{marker}");
    // Passing output is not shown by default.
    assert!(!err.contains("passing output"), "{out}");
}

#[test]
fn output_display_from_flags_and_manifest() {
    if !root() {
        return;
    }
    let manifest = r#"
[report]
failure-output = "never"
success-output = "final"

[[test]]
name = "fails"
command = ["sh", "-c", "echo 'the assertion message' >&2; exit 1"]

[[test]]
name = "passes"
command = ["sh", "-c", "echo 'passing output'"]
"#;
    let p = Project::new(manifest);
    let out = p.psy(&["run"]);
    out.code(1);
    assert!(!out.stderr.contains("the assertion message"), "{out}");
    assert!(out.stderr.contains("--- FAIL: fails (exit 1)\n"), "{out}");
    let summary = out.stderr.find("Summary:").unwrap();
    let passing = out.stderr.find("passing output").expect(&out.stderr);
    assert!(passing < summary, "{out}");

    // The command line wins over the manifest.
    let out = p.psy(&[
        "run",
        "--failure-output",
        "final",
        "--success-output",
        "never",
    ]);
    out.code(1);
    assert_eq!(
        out.stderr.matches("the assertion message").count(),
        1,
        "{out}"
    );
    let fail_line = out.stderr.find("   FAIL [").unwrap();
    let section = out.stderr.find("--- FAIL: fails").unwrap();
    let message = out.stderr.find("the assertion message").unwrap();
    assert!(fail_line < section && section < message, "{out}");
    assert!(!out.stderr.contains("passing output"), "{out}");
}

#[test]
fn bad_output_display_values_are_usage_errors() {
    let p = Project::new("[[test]]\nname = \"a\"\ncommand = [\"true\"]\n");
    let out = p.psy(&["run", "--failure-output", "sometimes"]);
    out.code(2);
    assert!(
        out.stderr
            .contains("\"sometimes\" is not one of immediate, final, immediate-final, never"),
        "{out}"
    );
    p.file(
        "psyduck.toml",
        "[report]\nsuccess-output = \"always\"\n[[test]]\nname = \"a\"\ncommand = [\"true\"]\n",
    );
    let out = p.psy(&["run"]);
    out.code(2);
    assert!(
        out.stderr.contains(
            "psyduck.toml:2:18: report.success-output: unknown variant `always`, expected one of `immediate`, `final`, `immediate-final`, `never`"
        ),
        "{out}"
    );
}

#[test]
fn quiet_and_verbose_levels() {
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
command = ["sh", "-c", "echo 'why it failed' >&2; exit 1"]
"#,
    );
    let out = p.psy(&["run", "-q"]);
    out.code(1);
    assert!(!out.stderr.contains("Running"), "{out}");
    assert!(!out.stderr.contains("Summary"), "{out}");
    assert!(out.stderr.contains("   FAIL ["), "{out}");
    assert!(out.stderr.contains("why it failed"), "{out}");
    let last = out.stderr.lines().last().unwrap();
    assert!(
        last.starts_with("FAILED: 1 of 2 tests did not pass in "),
        "{out}"
    );

    let out = p.psy(&["-v", "run", "good"]);
    out.code(0);
    assert!(out.stderr.contains("Running 1 test (run "), "{out}");
    assert!(out.stderr.contains("  START good\n"), "{out}");
    assert!(out.stderr.contains("   PASS ["), "{out}");
    assert!(out.stderr.contains("Summary: 1 test in "), "{out}");

    p.psy(&["run", "-q", "-v"]).code(2);
}

/// After a first run, the next one knows how long it should take.
#[test]
fn expected_duration_from_history() {
    if !root() {
        return;
    }
    let p = Project::new("[[test]]\nname = \"a\"\ncommand = [\"true\"]\n");
    let out = p.psy(&["run"]);
    out.code(0);
    assert!(!out.stderr.contains("about"), "no history yet:\n{out}");
    let (out, events) = p.run_json(&[]);
    out.code(0);
    let started = events.of_type("run-started").next().unwrap();
    assert!(started["expected_ms"].is_u64(), "{out}");
    assert!(out.stderr.contains(", about "), "{out}");
}

#[test]
fn log_and_show_read_a_tests_output_back() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "smoke-test"
retries = 1
command = ["sh", "-c", "echo out-$PSY_ATTEMPT; echo err-$PSY_ATTEMPT >&2; i=0; while [ $i -lt 15 ]; do echo line-$i; i=$((i+1)); done; exit 1"]

[[test]]
name = "other"
command = ["true"]
"#,
    );
    let (out, events) = p.run_json(&[]);
    out.code(1);
    let run = events.run_id().to_string();

    // Default: the last attempt of the latest run, both streams under headers.
    let out = p.psy(&["log", "smoke-test"]);
    out.code(0);
    assert!(
        out.stdout.starts_with(&format!(
            "--- stdout of smoke-test (run {run}, attempt 2 of 2): "
        )),
        "{out}"
    );
    assert!(out.stdout.contains("\nout-2\nline-0\n"), "{out}");
    assert!(out.stdout.contains("--- stderr of smoke-test"), "{out}");
    assert!(out.stdout.contains("\nerr-2\n"), "{out}");
    assert!(!out.stdout.contains("out-1"), "{out}");

    // One stream of one attempt, exactly as written.
    let out = p.psy(&[
        "log",
        "smoke-test",
        &run[..12],
        "--attempt",
        "1",
        "--stderr",
    ]);
    out.code(0);
    assert_eq!(out.stdout, "err-1\n");
    let out = p.psy(&["log", "other", "--stdout"]);
    out.code(0);
    assert_eq!(out.stdout, "");

    // Errors say what exists.
    let out = p.psy(&["log", "smoke-test", "--attempt", "3"]);
    out.code(2);
    assert!(
        out.stderr.contains(&format!(
            "test \"smoke-test\" ran 2 attempts in run {run}: --attempt 3 is out of range (1 to 2)"
        )),
        "{out}"
    );
    let out = p.psy(&["log", "smkoe-test"]);
    out.code(2);
    assert!(
        out.stderr
            .contains("no test \"smkoe-test\" in any recorded run; did you mean \"smoke-test\"?"),
        "{out}"
    );
    // A part of exactly one recorded id stands for it (as `psy run`'s filters match).
    let out = p.psy(&["log", "smoke", &run]);
    out.code(0);
    assert!(out.stdout.contains("--- stdout of smoke-test"), "{out}");
    let out = p.psy(&["log", "smoke-tset", &run]);
    out.code(2);
    assert!(
        out.stderr.contains(&format!(
            "no test \"smoke-tset\" in run {run}; did you mean \"smoke-test\"?"
        )),
        "{out}"
    );
    let out = p.psy(&["log", "smoke-test", "19990101-nope"]);
    out.code(2);
    assert!(out.stderr.contains("no run \"19990101-nope\""), "{out}");

    // One test of a run: its attempts and the heads of their logs.
    let out = p.psy(&["show", &run, "smoke-test"]);
    out.code(0);
    assert!(
        out.stdout
            .starts_with("smoke-test  fail after 2 attempts in "),
        "{out}"
    );
    assert!(out.stdout.contains("\nout-1\nline-0\n"), "{out}");
    assert!(
        out.stdout
            .contains("\nline-8\n    ... 6 lines omitted (47B): psy log smoke-test "),
        "{out}"
    );
    assert!(out.stdout.contains(" --attempt 2 --stdout\n"), "{out}");
    assert!(!out.stdout.contains("line-9\n"), "{out}");
    p.psy(&["show", &run, "nope"]).code(2);
    // A test id where the run id goes: the error says how to show the test.
    let out = p.psy(&["show", "smoke-test"]);
    out.code(2);
    assert!(
        out.stderr.contains(&format!(
            "no run \"smoke-test\", but the latest run has a test of that name: `psy show {run} smoke-test` shows it"
        )),
        "{out}"
    );
}

#[test]
fn failed_discovery_shows_its_output_line_by_line() {
    let p = Project::new(
        "[[discover]]\nlist = [\"./list.sh\"]\ncommand = [\"./run.sh\", \"{name}\"]\n",
    );
    p.file(
        "list.sh",
        "#!/bin/sh\necho 'error[E0425]: cannot find value `x`' >&2\necho ' --> src/lib.rs:3:5' >&2\necho '  |' >&2\necho 'error: could not compile `demo`' >&2\nexit 101\n",
    );
    p.executable("list.sh");
    for args in [&["list"][..], &["-q", "list"], &["run"]] {
        let out = p.psy(args);
        out.code(2);
        let shown = "error[E0425]: cannot find value `x`\n --> src/lib.rs:3:5\n  |\nerror: could not compile `demo`\n";
        assert_eq!(out.stderr.matches(shown).count(), 1, "{out}");
        assert!(
            out.stderr.ends_with(
                "`./list.sh` failed (exit status: 101); last line of its stderr: error: could not compile `demo`\n"
            ),
            "{out}"
        );
    }
    // Output on stdout only (pytest's collection errors) is shown too.
    p.file(
        "list.sh",
        "#!/bin/sh\necho 'ERROR collecting a.py'\necho 'E   SyntaxError'\nexit 2\n",
    );
    let out = p.psy(&["list"]);
    out.code(2);
    assert!(
        out.stderr
            .starts_with("ERROR collecting a.py\nE   SyntaxError\nerror: "),
        "{out}"
    );
}

#[test]
fn discovery_progress_streams_unless_quiet() {
    let p = Project::new(
        "[[discover]]\nlist = [\"./list.sh\"]\ncommand = [\"./run.sh\", \"{name}\"]\n",
    );
    p.file(
        "list.sh",
        "#!/bin/sh\necho '   Compiling demo v0.1.0' >&2\necho '    Finished test profile' >&2\necho only-test\n",
    );
    p.executable("list.sh");
    let out = p.psy(&["list"]);
    out.code(0);
    assert!(
        out.stderr
            .starts_with("   Compiling demo v0.1.0\n    Finished test profile\n"),
        "{out}"
    );
    assert!(out.stdout.contains("only-test"), "{out}");
    let out = p.psy(&["-q", "list"]);
    out.code(0);
    assert!(!out.stderr.contains("Compiling"), "{out}");
}
