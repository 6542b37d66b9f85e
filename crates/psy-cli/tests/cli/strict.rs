//! Strict mode: `psy run --require-guarantees` and `[host] require-guarantees = true` refuse,
//! before anything runs, tests asking for what the host cannot enforce; without them, a warning.
//!
//! The host here is capable (root, cgroup v1, loop devices), so the gap is made for real: psy
//! runs in a mount namespace of its own where `/dev/loop-control` is a plain file.

use crate::support::{self, Out, Project, PSY};
use std::process::Command;

/// A test that needs a loop device (`disk`) beside one that does not.
const MANIFEST: &str = r#"[[test]]
name = "plain"
command = ["true"]

[[test]]
name = "needy"
command = ["true"]
disk = "64MiB"
"#;

/// `psy ARGS` in `project`, in a mount namespace without a loop control device.
fn psy_without_loop_devices(project: &Project, args: &[&str]) -> Out {
    let fake = project.dir().join("not-loop-control");
    std::fs::write(&fake, "").unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$0" /dev/loop-control && exec "$@""#)
        .arg(&fake)
        .arg(PSY)
        .args(args)
        .current_dir(project.dir())
        .env_remove("NO_COLOR")
        .env_remove("PSY_LOG")
        .env("PSY_HOST_FILE", project.dir().join("no-host-file.toml"));
    Out::of(cmd)
}

#[track_caller]
fn assert_refused(out: &Out, project: &Project) {
    out.code(2);
    for expected in [
        "1 selected test asks for guarantees this host cannot enforce",
        "no loop device for `disk`: /dev/loop-control is not the loop control device",
        "test `needy` (psyduck.toml:5) asks disk = 64MiB",
    ] {
        assert!(out.stderr.contains(expected), "{expected:?} in:\n{out}");
    }
    assert!(!out.stderr.contains("`plain`"), "{out}");
    assert_eq!(project.db_rows(), (0, 0), "nothing ran or was recorded");
}

#[test]
fn the_flag_refuses_naming_the_test_and_why() {
    if !support::root() {
        return;
    }
    let project = Project::new(MANIFEST);
    let out = psy_without_loop_devices(&project, &["run", "--require-guarantees"]);
    assert_refused(&out, &project);
}

#[test]
fn the_manifest_key_refuses_the_same() {
    if !support::root() {
        return;
    }
    let project = Project::new(&format!("[host]\nrequire-guarantees = true\n\n{MANIFEST}"));
    let out = psy_without_loop_devices(&project, &["run"]);
    out.code(2);
    assert!(
        out.stderr
            .contains("test `needy` (psyduck.toml:8) asks disk = 64MiB"),
        "{out}"
    );
    assert!(out.stderr.contains("no loop device for `disk`"), "{out}");
    assert_eq!(project.db_rows(), (0, 0));
}

#[test]
fn without_strict_mode_it_is_a_warning() {
    if !support::root() {
        return;
    }
    let project = Project::new(MANIFEST);
    let out = psy_without_loop_devices(&project, &["run", "--color", "never"]);
    // The run goes ahead: `plain` passes, `needy` fails to start without a loop device.
    out.code(1);
    assert!(
        out.stderr.contains(
            "1 test asks for guarantees this host cannot enforce: a filesystem of its \
             own (1 test); `psy run --require-guarantees` names them and why, and refuses to run"
        ),
        "{out}"
    );
    assert_eq!(project.db_rows().0, 1);
}

/// Strict mode on this (capable, root) host refuses nothing: every default guarantee holds.
#[test]
fn a_capable_host_runs_in_strict_mode() {
    if !support::root() {
        return;
    }
    let project = Project::new(MANIFEST);
    project.psy(&["run", "--require-guarantees"]).code(0);
}
