//! Attempt logs end to end: output is kept at its path, a stream that wrote nothing leaves no
//! file, and the spare files behind empty streams are reused by the next attempts and runs.

use crate::support::{root, Project};
use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn only_streams_with_output_leave_files() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "silent"
command = ["true"]
[[test]]
name = "chatty"
command = ["sh", "-c", "echo to-stdout; echo to-stderr >&2"]
[[test]]
name = "quiet-failure"
command = ["sh", "-c", "echo only-stderr >&2; exit 3"]
"#,
    );
    let (out, events) = p.run_json(&[]);
    out.code(1);
    let run_logs = p.dir().join(".psyduck/logs").join(events.run_id());
    assert_eq!(
        names(&run_logs),
        ["chatty.1.err", "chatty.1.out", "quiet-failure.1.err"]
            .map(String::from)
            .into(),
    );
    assert_eq!(
        std::fs::read_to_string(run_logs.join("chatty.1.out")).unwrap(),
        "to-stdout\n"
    );
    assert_eq!(
        std::fs::read_to_string(run_logs.join("chatty.1.err")).unwrap(),
        "to-stderr\n"
    );
    // The store still names where each stream would be; the empty one reads as no output.
    let silent = &events.attempts("silent")[0];
    assert!(silent["stdout_path"]
        .as_str()
        .unwrap()
        .ends_with("silent.1.out"));

    // The files behind the empty streams are spares that later attempts reuse: every spare
    // left by this run becomes a log or stays a spare in the next, no new inode per stream.
    let spares = p.dir().join(".psyduck/logs/.spare");
    let left = inodes(&spares);
    assert!(!left.is_empty(), "the silent streams' files became spares");
    let (out, events) = p.run_json(&[]);
    out.code(1);
    let mut now = inodes(&spares);
    now.extend(inodes(&p.dir().join(".psyduck/logs").join(events.run_id())));
    assert!(left.is_subset(&now), "spares {left:?} not reused: {now:?}");
}

fn inodes(dir: &Path) -> BTreeSet<u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().ino())
        .collect()
}

/// `a/b`, `a_b` and `a b` would sanitise to the same file name: each attempt must still get
/// its own log (no "File exists" error) holding its own output.
#[test]
fn ids_that_sanitise_alike_keep_their_own_logs() {
    if !root() {
        return;
    }
    let mut manifest = String::new();
    for name in ["a/b", "a_b", "a b"] {
        manifest.push_str(&format!(
            "[[test]]\nname = \"{name}\"\nretries = 1\ncommand = [\"sh\", \"-c\", \"echo \\\"$PSY_TEST_ID $PSY_ATTEMPT\\\"; exit 1\"]\n"
        ));
    }
    let p = Project::new(&manifest);
    let (out, events) = p.run_json(&[]);
    out.code(1);
    let mut paths = BTreeSet::new();
    for name in ["a/b", "a_b", "a b"] {
        assert_eq!(events.status(name), "fail", "{out}");
        for attempt in events.attempts(name) {
            let path = attempt["stdout_path"].as_str().unwrap();
            let n = attempt["attempt"].as_u64().unwrap();
            assert_eq!(
                std::fs::read_to_string(path).unwrap(),
                format!("{name} {n}\n"),
                "{path}"
            );
            assert!(paths.insert(path.to_string()), "{path} used twice");
        }
    }
    assert_eq!(paths.len(), 6);
}
