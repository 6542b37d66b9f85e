//! `psy run --shard K/N` and `psy export --durations` / `psy import`: shards cover the suite
//! once, and two projects with the same tests and imported durations split them the same way.

use crate::support::{root, Project};
use serde_json::Value;
use std::path::Path;

/// Six tests of different lengths, so durations (not counts) decide the split.
fn manifest() -> String {
    let mut m = String::from("[defaults]\ncpus = 0.1\n");
    for (name, secs) in [
        ("a", "0.6"),
        ("b", "0.1"),
        ("c", "0.1"),
        ("d", "0.3"),
        ("e", "0"),
        ("f", "0.2"),
    ] {
        m.push_str(&format!(
            "[[test]]\nname = \"{name}\"\ncommand = [\"sleep\", \"{secs}\"]\n"
        ));
    }
    m
}

/// The ids each of `total` shards runs, and the "shard K/N: ..." line of each. Each shard runs
/// in a project of its own (as CI jobs do), with `durations` imported if given: a shard's run
/// records durations, which would change the split for the next shard in the same project.
fn shards(durations: Option<&Path>, total: u32) -> Vec<(Vec<String>, String)> {
    (1..=total)
        .map(|k| {
            let p = Project::new(&manifest());
            if let Some(file) = durations {
                p.psy(&["import", file.to_str().unwrap()]).code(0);
            }
            let (out, events) = p.run_json(&["--shard", &format!("{k}/{total}")]);
            out.code(0);
            let line = out
                .stderr
                .lines()
                .find(|l| l.starts_with(&format!("shard {k}/{total}: ")))
                .unwrap_or_else(|| panic!("no shard line\n{out}"))
                .to_string();
            (events.test_ids(), line)
        })
        .collect()
}

#[test]
fn shards_cover_every_test_once_and_bad_values_are_refused() {
    if !root() {
        return;
    }
    let p = Project::new(&manifest());
    for total in [1, 2, 4, 7] {
        let mut all: Vec<String> = shards(None, total)
            .into_iter()
            .flat_map(|(ids, _)| ids)
            .collect();
        all.sort();
        assert_eq!(all, ["a", "b", "c", "d", "e", "f"], "{total} shards");
    }
    for (bad, says) in [
        ("0/2", "K counts from 1"),
        ("3/2", "1 to 2"),
        ("1/0", "N must be"),
        ("half", "expected K/N"),
    ] {
        let out = p.psy(&["run", "--shard", bad]);
        out.code(2);
        assert!(
            out.stderr.contains(bad) && out.stderr.contains(says),
            "{out}"
        );
    }
}

#[test]
fn imported_durations_give_another_project_the_same_split() {
    if !root() {
        return;
    }
    let measured = Project::new(&manifest());
    measured.run_json(&[]).0.code(0);
    let file = measured.dir().join("durations.json");
    let out = measured.psy(&["export", "--durations", file.to_str().unwrap()]);
    out.code(0);
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(exported["format"], "psyduck-durations");
    assert_eq!(exported["version"], 1);
    let durations = exported["durations"].as_object().unwrap();
    assert_eq!(durations.len(), 6, "{exported}");
    assert!(
        durations["a"].as_f64().unwrap() > durations["e"].as_f64().unwrap(),
        "{exported}"
    );

    let fresh = Project::new(&manifest());
    let out = fresh.psy(&["import", file.to_str().unwrap()]);
    out.code(0);
    assert!(
        out.stderr.contains("imported the durations of 6 tests"),
        "{out}"
    );
    let (a, b) = (shards(Some(&file), 3), shards(Some(&file), 3));
    assert_eq!(a, b, "two sets of CI jobs split alike");
    let mut all: Vec<&String> = a.iter().flat_map(|(ids, _)| ids).collect();
    all.sort();
    assert_eq!(all, ["a", "b", "c", "d", "e", "f"]);
    // The longest test (a, 0.6 s) is alone in its shard: durations decided, not counts.
    assert!(a.iter().any(|(ids, _)| ids == &["a"]), "{a:?}");
    // `psy list --shard` shows what each shard would run, without running it.
    for (k, (ids, _)) in a.iter().enumerate() {
        let out = fresh.psy(&["list", "--shard", &format!("{}/3", k + 1)]);
        out.code(0);
        let listed: Vec<&str> = out
            .stdout
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .filter(|id| ["a", "b", "c", "d", "e", "f"].contains(id))
            .collect();
        assert_eq!(listed, *ids, "shard {}\n{out}", k + 1);
    }

    let bad = fresh.dir().join("bad.json");
    std::fs::write(&bad, r#"{"format":"psyduck-durations","version":9}"#).unwrap();
    let out = fresh.psy(&["import", bad.to_str().unwrap()]);
    out.code(2);
    assert!(
        out.stderr.contains("bad.json: version 9 is not supported"),
        "{out}"
    );
}
