//! What an agent runs of a project: images of two projects named alike stay apart, and a dirty
//! work tree submitted with `psy submit --wait` runs as it is (tracked changes, untracked files,
//! `[prepare]`'s output; not ignored files).

use super::fleet::{project, Database, Fleet, PSY};
use super::{root, stop_agents};
use psy_server::testkit::TestSchema;
use std::process::Command;

/// A root filesystem directory in `project` with busybox and `/etc/flavour` = `flavour`.
fn rootfs(project: &std::path::Path, flavour: &str) -> bool {
    const BUSYBOX: &str = "/bin/busybox";
    if !std::path::Path::new(BUSYBOX).exists() {
        eprintln!("skipped: no {BUSYBOX} (Debian's busybox-static)");
        return false;
    }
    let bin = project.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(project.join("rootfs/etc")).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    for applet in ["sh", "cat"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    std::fs::write(project.join("rootfs/etc/flavour"), flavour).unwrap();
    true
}

#[test]
fn images_of_two_projects_named_alike_stay_apart_on_one_agent() {
    if !root() {
        return;
    }
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let mut fleet = Fleet::new(Database::Shared(schema), 30);
    let manifest = "[defaults]\ncpus = 0.25\nmemory = \"32MiB\"\nimage = \"./rootfs\"\n\n\
                    [[test]]\nname = \"flavour\"\ncommand = [\"sh\", \"-c\", \"cat /etc/flavour\"]\n";
    let projects: Vec<std::path::PathBuf> = ["one", "two"]
        .iter()
        .map(|name| {
            let dir = fleet.dir.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("psyduck.toml"), manifest).unwrap();
            dir
        })
        .collect();
    if !rootfs(&projects[0], "first\n") || !rootfs(&projects[1], "second\n") {
        return;
    }
    fleet.start_agent("a1", "1");
    fleet.wait_registered(&["a1"]);
    let runs: Vec<i64> = projects.iter().map(|p| fleet.submit(p)).collect();
    for (run, flavour) in runs.iter().zip(["first", "second"]) {
        fleet.wait_done(*run);
        let results = fleet.recorded_once(*run, 1);
        let (status, _, output) = &results["flavour"];
        assert_eq!(
            (status.as_str(), output.as_str()),
            ("pass", format!("{flavour}\n").as_str()),
            "run {run}"
        );
    }
    stop_agents(&mut fleet);
}

/// `psy submit --wait` of a dirty git work tree, run by a real agent: the tests see the tracked
/// file as changed (not as committed), the untracked file, not the ignored one, and what the
/// manifest's `[prepare]` built on the agent; the verdicts and exit code are `psy run`'s.
#[test]
fn a_dirty_tree_submitted_with_wait_runs_on_an_agent_as_it_is() {
    if !root() {
        return;
    }
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let mut fleet = Fleet::new(Database::Shared(schema), 30);
    let project = project(
        &fleet,
        r#"[defaults]
cpus = 0.25
memory = "64MiB"
timeout = "60s"

[prepare]
command = ["sh", "-c", "echo built-on-the-agent > built.txt"]

[[test]]
name = "tracked-change"
command = ["grep", "-q", "changed", "data.txt"]

[[test]]
name = "untracked"
command = ["test", "-f", "new.txt"]

[[test]]
name = "ignored"
command = ["sh", "-c", "! test -e debug.log"]

[[test]]
name = "prepared"
command = ["grep", "-q", "built-on-the-agent", "built.txt"]

[[test]]
name = "fails"
command = ["sh", "-c", "echo failing-on-purpose; exit 3"]
"#,
    );
    let git = |args: &[&str]| psy_snapshot::testkit::git(&project, args);
    std::fs::write(project.join("data.txt"), "committed\n").unwrap();
    std::fs::write(project.join(".gitignore"), "debug.log\nbuilt.txt\n").unwrap();
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "base"]);
    std::fs::write(project.join("data.txt"), "changed\n").unwrap();
    std::fs::write(project.join("new.txt"), "untracked\n").unwrap();
    std::fs::write(project.join("debug.log"), "ignored\n").unwrap();

    fleet.start_agent("a1", "1");
    fleet.wait_registered(&["a1"]);
    let out = Command::new(PSY)
        .current_dir(&project)
        .args([
            "submit",
            "--wait",
            "--server",
            &fleet.url(),
            "--token",
            &fleet.user,
        ])
        .args(["--junit", "report.xml"])
        .env("NO_COLOR", "1")
        .output()
        .expect("psy submit");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let junit = std::fs::read_to_string(project.join("report.xml")).unwrap();
    for passed in ["tracked-change", "untracked", "ignored", "prepared"] {
        assert!(
            junit.contains(&format!("name=\"{passed}\"")),
            "{passed} missing from\n{junit}"
        );
    }
    assert_eq!(junit.matches("<failure").count(), 1, "{junit}");
    assert!(junit.contains("failing-on-purpose"), "{junit}");
    stop_agents(&mut fleet);
}
