//! Helpers: the fixture projects, the environment every run gets, and plain pytest's verdicts
//! per node id to compare the warm ones with.

use psy_warm::suite::{self, Finished};
use psy_warm::WarmParent;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

pub(crate) const PYTHON: &str = "python3";

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Warnings are errors (the worker must raise none), no bytecode is written into the fixtures,
/// and the probes write into `probe`.
pub(crate) fn env(probe: &Path) -> Vec<(String, String)> {
    [
        ("PYTHONWARNINGS", "error"),
        ("PYTHONDONTWRITEBYTECODE", "1"),
        ("WARM_PROBE_DIR", probe.to_str().unwrap()),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec()
}

pub(crate) fn start(dir: &Path, args: &[&str], env: &[(String, String)]) -> WarmParent {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    WarmParent::start(PYTHON, &args, dir, env).expect("the warm worker collects")
}

/// Runs every collected item, `parallel` at a time, its files in `files`.
pub(crate) fn run_all(parent: &mut WarmParent, parallel: usize, files: &Path) -> Vec<Finished> {
    let ids = parent.items().to_vec();
    let finished = suite::run_each(parent, &ids, parallel, files).expect("the suite runs");
    assert_eq!(finished.len(), ids.len());
    finished
}

/// The warm category of every test, by node id.
pub(crate) fn warm_categories(finished: &[Finished]) -> BTreeMap<String, String> {
    finished
        .iter()
        .map(|f| {
            let outcome = f.verdict.outcome.as_ref();
            let category = outcome.map_or("no result", |o| o.outcome.as_str());
            (f.nodeid.clone(), category.to_string())
        })
        .collect()
}

/// Plain `pytest -v` on the same tree: each node id's category, from the word pytest prints after
/// it (a test with a passing call and a failing teardown prints two lines).
pub(crate) fn plain_categories(
    dir: &Path,
    args: &[&str],
    env: &[(String, String)],
    ids: &[String],
) -> BTreeMap<String, String> {
    let output = Command::new(PYTHON)
        .args(["-m", "pytest", "-v", "-p", "no:cacheprovider"])
        .args(["-o", "console_output_style=classic"])
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("plain pytest runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let words = [
        ("PASSED", "passed"),
        ("FAILED", "failed"),
        ("ERROR", "error"),
        ("SKIPPED", "skipped"),
        ("XFAIL", "xfailed"),
        ("XPASS", "xpassed"),
    ];
    let mut seen: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for line in stdout.lines() {
        for id in ids {
            let Some(rest) = line
                .strip_prefix(id.as_str())
                .and_then(|r| r.strip_prefix(' '))
            else {
                continue;
            };
            let word = rest.split_whitespace().next().unwrap_or_default();
            if let Some((_, category)) = words.iter().find(|(w, _)| *w == word) {
                seen.entry(id.clone()).or_default().push(category);
            }
        }
    }
    // The category that decides, as pytest's summary counts it.
    let order = ["failed", "error", "skipped", "xfailed", "xpassed", "passed"];
    seen.into_iter()
        .map(|(id, categories)| {
            let decided = order.iter().find(|c| categories.contains(c)).unwrap();
            (id, decided.to_string())
        })
        .collect()
}

/// Plain pytest's exit status on one node id, in a process of its own (as a cold psy test).
pub(crate) fn plain_exit(dir: &Path, nodeid: &str, env: &[(String, String)]) -> ExitStatus {
    Command::new(PYTHON)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", nodeid])
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("plain pytest runs")
        .status
}

pub(crate) fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A warm worker on a fixture project, with a probe directory and one for the tests' files.
pub(crate) struct Warm {
    pub(crate) dir: PathBuf,
    pub(crate) parent: WarmParent,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) probe: tempfile::TempDir,
    pub(crate) files: tempfile::TempDir,
}

pub(crate) fn warm(name: &str, args: &[&str]) -> Warm {
    let dir = fixture(name);
    let probe = tempfile::tempdir().unwrap();
    let env = env(probe.path());
    Warm {
        parent: start(&dir, args, &env),
        dir,
        env,
        probe,
        files: tempfile::tempdir().unwrap(),
    }
}
