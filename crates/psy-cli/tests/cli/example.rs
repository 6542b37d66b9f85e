//! The bundled example suite passes (run on a copy, so no `.psyduck/` lands in the repository).

use crate::support::{root, Events, Project};
use std::path::Path;

/// Copies the example `from` to `to`, without its `.psyduck` state nor the directories in `skip`.
pub(crate) fn copy_dir(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            let name = entry.file_name();
            if name != ".psyduck" && !skip.iter().any(|s| name == *s) {
                copy_dir(&entry.path(), &target, skip);
            }
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn basic_example_passes() {
    if !root() {
        return;
    }
    let p = Project::empty();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/basic");
    copy_dir(&example, &p.dir().join("examples/basic"), &[]);

    let out = p.psy(&[
        "run",
        "-m",
        "examples/basic/psyduck.toml",
        "--message-format",
        "json",
    ]);
    out.code(0);
    let events = Events::parse(&out);
    let s = events.summary();
    assert!(s["total"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(
        s["passed"].as_u64().unwrap() + s["flaky"].as_u64().unwrap(),
        s["total"].as_u64().unwrap(),
        "{out}"
    );
    // State lives next to the manifest, not in the working directory.
    assert!(p.dir().join("examples/basic/.psyduck/psyduck.db").exists());
    assert!(!p.dir().join(".psyduck").exists());
}

/// Runs the example `name` (a multi-node scenario needing `programs` on the host) and expects
/// every test to pass; without the programs it is skipped, but fails under `CI`.
fn scenario_example_passes(name: &str, programs: &[&str]) {
    if !root() {
        return;
    }
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| {
            !std::process::Command::new("sh")
                .args(["-c", &format!("command -v {p}")])
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "examples/{name} needs {missing:?} (scripts/test installs them)"
        );
        eprintln!("skipped: examples/{name} needs {missing:?}");
        return;
    }
    let p = Project::empty();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../examples/{name}"));
    let dir = p.dir().join(format!("examples/{name}"));
    copy_dir(&example, &dir, &[]);
    let manifest = format!("examples/{name}/psyduck.toml");
    let out = p.psy(&["run", "-m", &manifest, "--message-format", "json"]);
    let events = Events::parse(&out);
    if out.code != 0 {
        for id in events.test_ids() {
            let show = p.psy(&["show", "-m", &manifest, events.run_id(), &id]);
            eprintln!("{show}");
        }
    }
    out.code(0);
    let s = events.summary();
    assert_eq!(
        s["passed"].as_u64(),
        s["total"].as_u64(),
        "every scenario passed: {out}"
    );
}

#[test]
fn etcd_example_passes() {
    scenario_example_passes("etcd", &["etcd", "etcdctl"]);
}

#[test]
fn redis_example_passes() {
    scenario_example_passes("redis", &["redis-server", "redis-cli"]);
}
