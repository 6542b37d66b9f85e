//! `warm = true` on pytest discovery: the manifest's keys and their errors, the warm starts the
//! tests get, collection by the warm worker into a run's `WarmParents`, and the cold fallback.

use crate::pytest::{pytest_available, TEST_A, TEST_B};
use crate::{error, files_vs_spawn, parse_in, project};
use psy_config::{DiscoverOptions, DiscoverProgress, Manifest, WarmKey, WarmParents};
use psy_model::TestSpec;
use std::sync::{Arc, Mutex};

const WARM: &str = "[[discover]]\npytest = { args = [\"tests\"], warm = true }\n";

#[test]
fn warm_keys_are_checked_where_they_are_written() {
    assert_eq!(
        error("[[discover]]\npytest = { per = \"file\", warm = true }\n"),
        "psyduck.toml:2:33: discover[0].pytest.warm: `warm = true` needs `per = \"test\"`: a warm \
         start forks one child per pytest item, where `per = \"file\"` runs a whole file per test"
    );
    assert_eq!(
        error("[[discover]]\npytest = { warm-fixtures = [\"db\"] }\n"),
        "psyduck.toml:2:28: discover[0].pytest.warm-fixtures: `warm-fixtures` needs `warm = true` in the same pytest table"
    );
    assert_eq!(
        error("[[discover]]\npytest = { warm = false, warm-exclude = [\"a*\"] }\n"),
        "psyduck.toml:2:41: discover[0].pytest.warm-exclude: `warm-exclude` needs `warm = true` in the same pytest table"
    );
    assert_eq!(
        error("[[discover]]\npytest = { warm = \"yes\" }\n"),
        "psyduck.toml:2:19: discover[0].pytest.warm: invalid type: string \"yes\", expected a boolean"
    );
    let unknown = error("[[discover]]\npytest = { wram = true }\n");
    assert!(
        unknown.starts_with("psyduck.toml:2:12: discover[0].pytest.wram: unknown field `wram`"),
        "{unknown}"
    );
    assert_eq!(
        error("[[discover]]\npytest = { warm = true, warm-fixtures = [\"db\", \"no-such\"] }\n"),
        "psyduck.toml:2:48: discover[0].pytest.warm-fixtures[1]: warm fixture \"no-such\" is not a Python name"
    );
    assert_eq!(
        error("[[discover]]\npytest = { warm = true, warm-exclude = [\"a[\"] }\n"),
        "psyduck.toml:2:41: discover[0].pytest.warm-exclude[0]: invalid glob pattern \"a[\": \
         Pattern syntax error near position 1: invalid range pattern"
    );
}

/// Discovery's progress, as the command line shows it.
#[derive(Default)]
struct Heard(Mutex<Vec<String>>);

impl DiscoverProgress for Heard {
    fn started(&self, _origin: &str, command: &str) {
        self.0.lock().unwrap().push(format!("started {command}"));
    }
    fn line(&self, _origin: &str, _line: &str) {}
    fn finished(&self, _origin: &str, ok: bool) {
        self.0.lock().unwrap().push(format!("finished {ok}"));
    }
}

/// Expands `manifest` with its warm workers going to `parents` (when given).
fn expand_warm(
    manifest: &Manifest,
    variants: &[String],
    parents: Option<&Arc<WarmParents>>,
) -> (Vec<TestSpec>, Vec<String>) {
    let heard = Arc::new(Heard::default());
    let options = DiscoverOptions {
        warm_parents: parents.cloned(),
        ..DiscoverOptions::default()
    };
    let specs = {
        let _guard = files_vs_spawn();
        manifest
            .expand_with(variants, &options, heard.clone())
            .unwrap()
    };
    let heard = heard.0.lock().unwrap().clone();
    (specs, heard)
}

fn suite() -> tempfile::TempDir {
    project(&[
        ("tests/test_a.py", TEST_A, false),
        ("tests/test_b.py", TEST_B, false),
    ])
}

#[test]
fn warm_tests_name_their_worker_and_keep_the_cold_command() {
    if !pytest_available() {
        return;
    }
    let p = suite();
    let text = format!(
        "{WARM}env = {{ MODE = \"x\" }}\n[[variant]]\nname = \"plain\"\n\
         [[variant]]\nname = \"slow\"\nargs = [\"--runslow\"]\nenv = {{ SLOW = \"1\" }}\n"
    );
    let text = text.replace(
        "warm = true",
        "warm = true, warm-exclude = [\"*test_b.py::*\"]",
    );
    let manifest = parse_in(p.path(), &text).unwrap();
    let (specs, heard) = expand_warm(&manifest, &[], None);
    assert_eq!(specs.len(), 8);
    assert_eq!(
        heard,
        [
            "started python3 -m pytest --collect-only -q -p no:cacheprovider tests",
            "finished true"
        ],
        "without a registry, --collect-only collects"
    );
    let test = |id: &str| specs.iter().find(|s| s.id.as_str() == id).unwrap();
    let plain = test("tests/test_a.py::test_p[1]@plain");
    let warm = plain
        .warm
        .as_ref()
        .expect("warm = true sets the warm start");
    assert_eq!(warm.python, "python3");
    assert_eq!(warm.args, ["tests"]);
    assert_eq!(warm.dir, p.path());
    assert_eq!(warm.item, "tests/test_a.py::test_p[1]");
    assert!(warm.fixtures.is_empty());
    assert_eq!(
        plain.command.last().map(String::as_str),
        Some("tests/test_a.py::test_p[1]"),
        "the cold command stays, as the fallback"
    );
    let slow = test("tests/test_a.py::test_p[1]@slow");
    assert_eq!(slow.warm.as_ref().unwrap().args, ["tests", "--runslow"]);
    assert_ne!(
        WarmKey::of(slow),
        WarmKey::of(plain),
        "a variant's worker is its own"
    );
    assert_eq!(test("tests/test_b.py::TestK::test_m@plain").warm, None);
}

#[test]
fn the_warm_worker_collects_once_and_waits_for_the_runner() {
    if !pytest_available() {
        return;
    }
    let p = suite();
    let cold_ids: Vec<String> = {
        let manifest = parse_in(p.path(), &WARM.replace(", warm = true", "")).unwrap();
        let (specs, _) = expand_warm(&manifest, &[], None);
        specs.iter().map(|s| s.id.to_string()).collect()
    };
    let text = format!("{WARM}env = {{ MODE = \"x\" }}\n");
    let text = text.replace("warm = true", "warm = true, warm-fixtures = [\"db\"]");
    let manifest = parse_in(p.path(), &text).unwrap();
    let parents = Arc::new(WarmParents::default());
    let (specs, heard) = expand_warm(&manifest, &[], Some(&parents));
    let ids: Vec<String> = specs.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(
        ids, cold_ids,
        "the worker collects what --collect-only lists"
    );
    assert_eq!(heard.len(), 2, "{heard:?}");
    assert!(
        heard[0].starts_with("started python3 -c <psy warm worker>"),
        "{heard:?}"
    );
    assert_eq!(heard[1], "finished true");
    assert!(!p.path().join(".pytest_cache").exists());
    assert_eq!(parents.len(), 1);
    let key = WarmKey::of(&specs[0]).unwrap();
    assert_eq!(key.env.get("MODE").map(String::as_str), Some("x"));
    assert_eq!(key.fixtures, ["db"]);
    let parent = parents
        .take_for(&specs[3])
        .expect("discovery left its worker");
    assert_eq!(parent.items(), cold_ids.as_slice());
    assert!(
        parents.take_for(&specs[0]).is_none(),
        "a worker is taken once"
    );
    assert!(parents.is_empty());
    parent.shutdown().unwrap();
}

#[test]
fn a_worker_that_cannot_collect_leaves_the_tests_cold() {
    if !pytest_available() {
        return;
    }
    // An interpreter that runs pytest but refuses the worker (`-c`).
    let p = project(&[
        ("tests/test_a.py", TEST_A, false),
        (
            "py",
            "#!/bin/sh\n[ \"$1\" = -c ] && { echo 'no warm worker here' >&2; exit 3; }\nexec python3 \"$@\"\n",
            true,
        ),
    ]);
    let text = WARM.replace("warm = true", "warm = true, python = \"./py\"");
    let manifest = parse_in(p.path(), &text).unwrap();
    let parents = Arc::new(WarmParents::default());
    let (specs, heard) = expand_warm(&manifest, &[], Some(&parents));
    assert_eq!(specs.len(), 3, "--collect-only collected instead");
    assert!(specs.iter().all(|s| s.warm.is_none()), "they start cold");
    assert!(parents.is_empty());
    assert_eq!(heard[1], "finished false", "{heard:?}");
    assert!(heard[2].contains("--collect-only"), "{heard:?}");
}
