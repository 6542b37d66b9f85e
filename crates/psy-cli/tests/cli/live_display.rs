//! The live display on a terminal, driven through a pty by `script(1)` (util-linux): skipped
//! where `script` is missing.

use crate::support::{root, Project, PSY};
use std::process::Command;

fn script_available() -> bool {
    let found = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipped: needs script(1) for a pty");
    }
    found
}

/// `psy ARGS` with stdout and stderr on a pty; what the terminal received.
fn on_a_terminal(p: &Project, args: &str) -> String {
    let out = Command::new("script")
        .args(["-qec", &format!("'{PSY}' {args}"), "/dev/null"])
        .current_dir(p.dir())
        .env_remove("NO_COLOR")
        .env_remove("PSY_LOG")
        .env("PSY_HOST_FILE", p.dir().join("no-host-file.toml"))
        .output()
        .expect("running script(1)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ETA counts down from the recorded duration from the first frame: before the only test
/// ended it is neither unknown (`?`) nor `0s`.
#[test]
fn eta_is_known_before_the_first_test_ends() {
    if !root() || !script_available() {
        return;
    }
    let p = Project::new("[[test]]\nname = \"waits\"\ncommand = [\"sleep\", \"2\"]\n");
    p.psy(&["run"]).code(0);
    let screen = on_a_terminal(&p, "run --color never");
    let first = screen
        .split(['\r', '\n'])
        .find(|frame| frame.contains(" 0/1 ") && frame.contains("ETA "))
        .unwrap_or_else(|| panic!("no progress frame before the test ended:\n{screen:?}"));
    let eta = first.rsplit("ETA ").next().unwrap().trim();
    assert!(
        eta != "?" && eta != "0s" && eta.ends_with('s'),
        "first frame {first:?}"
    );
    assert!(screen.contains("Running 1 test (run "), "{screen:?}");
    // The bar is gone at the end; the summary stays.
    assert!(screen.contains("Summary: 1 test in "), "{screen:?}");
}

/// A discovery command's progress on a terminal is a spinner with its last line; a failure
/// then shows its whole stderr, line by line.
#[test]
fn discovery_spinner_then_whole_output_on_failure() {
    if !script_available() {
        return;
    }
    let p = Project::new("[[discover]]\nlist = [\"./list.sh\"]\ncommand = [\"x\", \"{name}\"]\n");
    p.file(
        "list.sh",
        "#!/bin/sh\necho '   Compiling demo' >&2\nsleep 1\necho 'error: first' >&2\necho '  second line' >&2\nexit 1\n",
    );
    p.executable("list.sh");
    let screen = on_a_terminal(&p, "list");
    assert!(
        screen.contains("discovering tests: ./list.sh") || screen.contains("./list.sh: "),
        "no spinner:\n{screen:?}"
    );
    assert!(
        screen.contains("error: first\r\n  second line\r\n"),
        "whole stderr after the spinner:\n{screen:?}"
    );
}
