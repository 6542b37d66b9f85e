//! A test that fills the disk holding `.psyduck` (it has no `disk` limit): psy frees its
//! reserve so the store can commit, stops starting tests, kills the running ones, records every
//! result and marks the run with the reason, exiting 4. Root only (mounts a small tmpfs).

use crate::support::{root, Events, Out, Project};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        Self::mount_with(dir, &format!("size={size}"))
    }

    /// With tmpfs options `options` (`size=...,nr_inodes=...`).
    fn mount_with(dir: &Path, options: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "psy-full-disk"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs on {}", dir.display());
        SmallDisk(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_loses_no_result_and_ends_the_run() {
    if !root() {
        return;
    }
    let p = Project::empty();
    let disk = SmallDisk::mount(&p.dir().join("small"), "128m");
    let project = Project::in_dir(&disk.0);
    project.file(
        "psyduck.toml",
        r#"
[defaults]
cpus = 0.25
memory = "64MiB"
timeout = "120s"

[[test]]
name = "early"
command = ["true"]

[[test]]
name = "filler"
command = ["sh", "-c", "dd if=/dev/zero of=$PSY_SCRATCH/fill bs=1M 2>/dev/null; sleep 100"]
# The tmpfs pages it writes are charged to its memory.
memory = "512MiB"

[[test]]
name = "late"
command = ["sh", "-c", "sleep 3"]
"#,
    );
    let (out, events) = project.run_json(&["-j", "3"]);
    out.code(4);
    assert!(
        out.stderr.contains("the disk holding") && out.stderr.contains("is full"),
        "{out}"
    );
    let conn = rusqlite::Connection::open(project.database()).unwrap();
    let (state, note): (String, Option<String>) = conn
        .query_row("SELECT state, note FROM runs", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(state, "interrupted", "{out}");
    assert!(note.is_some_and(|n| n.contains("is full")), "{out}");
    // Every attempt reported is in the store, the killed filler included.
    let stored = reported_attempts_are_stored(&events, &conn, &out);
    assert!(stored.contains(&("filler".to_string(), 1)), "{out}");
    assert_eq!(events.status("filler"), "error", "{out}");
    assert!(events.summary()["not_run"].as_u64().is_some());
    let show = project.psy(&["show"]);
    show.code(0);
    assert!(
        show.stdout.contains("stopped early: the disk holding"),
        "{show}"
    );
}

/// A test that uses up the inodes of the disk holding `.psyduck` (no `disk` limit, so nothing
/// bounds them) while its neighbours start and print: psy either runs everything or stops the run
/// as for a full disk (exit 4), and in both cases every reported attempt is in the store and the
/// run is closed. It never crashes (exit 3) or leaves the run "running".
#[test]
fn inodes_used_up_by_a_test_lose_no_result() {
    if !root() {
        return;
    }
    let p = Project::empty();
    let disk = SmallDisk::mount_with(&p.dir().join("few-inodes"), "size=128m,nr_inodes=600");
    let project = Project::in_dir(&disk.0);
    let mut manifest = String::from(
        r#"
[defaults]
cpus = 0.25
memory = "64MiB"
timeout = "120s"

[[test]]
name = "filler"
command = ["sh", "-c", "i=0; while touch $PSY_SCRATCH/f$i 2>/dev/null; do i=$((i+1)); done; echo made $i files; sleep 2"]
"#,
    );
    for n in 0..6 {
        manifest.push_str(&format!(
            "\n[[test]]\nname = \"late-{n}\"\ncommand = [\"sh\", \"-c\", \"sleep 0.5; echo out; echo err >&2\"]\n"
        ));
    }
    project.file("psyduck.toml", &manifest);
    let (out, events) = project.run_json(&["-j", "3"]);
    assert!(
        matches!(out.code, 0 | 4),
        "psy ends with a verdict or a full-disk stop: {out}"
    );
    let conn = rusqlite::Connection::open(project.database()).unwrap();
    let state: String = conn
        .query_row("SELECT state FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_ne!(state, "running", "{out}");
    let stored = reported_attempts_are_stored(&events, &conn, &out);
    assert!(
        stored.contains(&("filler".to_string(), 1)),
        "the filler's own attempt is recorded: {out}"
    );
}

/// Asserts that every attempt reported in `events` is in the store and nothing else is; returns
/// the stored `(test_id, attempt)` pairs.
fn reported_attempts_are_stored(
    events: &Events,
    conn: &rusqlite::Connection,
    out: &Out,
) -> BTreeSet<(String, i64)> {
    let reported: BTreeSet<(String, i64)> = events
        .of_type("attempt-finished")
        .map(|e| {
            let r = &e["result"];
            (
                r["test_id"].as_str().unwrap().to_string(),
                r["attempt"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut stmt = conn
        .prepare("SELECT test_id, attempt FROM attempts")
        .unwrap();
    let stored: BTreeSet<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(reported, stored, "{out}");
    stored
}
