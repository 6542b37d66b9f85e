//! psy on a real crate (`tests/fixtures/nextest-crate`) gives the verdicts `cargo nextest run`
//! gives on the same crate: a unit and an integration test of the same name stay two tests,
//! the environment nextest sets is there, `CARGO_TARGET_TMPDIR` is writable, `#[ignore]` tests
//! are skipped (or run with `--run-ignored`), and a panic fails.

use crate::fixtures::{copy, tool_works};
use crate::junit::parse;
use crate::support::{root, Events, Project};
use std::collections::BTreeMap;
use std::process::Command;

/// `cargo nextest run` writes its JUnit report here (`.config/nextest.toml` asks it to).
const NEXTEST_JUNIT: &str = "target/nextest/default/junit.xml";

/// The fixture's tests: `<binary id> <test name>` as psy names them, and nextest shows them.
const IDS: [&str; 7] = [
    "psy-fixture it::a",
    "psy-fixture it::ignored_one",
    "psy-fixture it::panics_with_a_long_message",
    "psy-fixture::it a",
    "psy-fixture::it env_is_nextests",
    "psy-fixture::it ignored_integration",
    "psy-fixture::it writes_target_tmpdir",
];

/// nextest's verdict per `<binary id> <test name>`, from its JUnit report: `pass` or `fail`.
fn nextest_verdicts(project: &Project, run_ignored: &str) -> BTreeMap<String, String> {
    project.file(
        ".config/nextest.toml",
        "[profile.default.junit]\npath = \"junit.xml\"\n",
    );
    let out = Command::new("cargo")
        .args([
            "nextest",
            "run",
            "--no-fail-fast",
            "--run-ignored",
            run_ignored,
        ])
        .current_dir(project.dir())
        // nextest sets no CARGO_TARGET_TMPDIR at run time, so its tests see the caller's: when
        // this test itself runs under psy (psy running its own suite), that is ours, not the
        // fixture's.
        .env_remove("CARGO_TARGET_TMPDIR")
        .output()
        .expect("running cargo nextest");
    // Exit 100: some test failed (the panicking one), as intended.
    assert_eq!(
        out.status.code(),
        Some(100),
        "cargo nextest run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = project.dir().join(NEXTEST_JUNIT);
    let xml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc = parse(&xml);
    let mut verdicts = BTreeMap::new();
    for suite in doc.children("testsuite") {
        for case in suite.children("testcase") {
            let failed = case.children("failure").next().is_some()
                || case.children("error").next().is_some();
            let id = format!("{} {}", case.attr("classname"), case.attr("name"));
            verdicts.insert(id, if failed { "fail" } else { "pass" }.to_string());
        }
    }
    verdicts
}

fn psy_verdicts(events: &Events) -> BTreeMap<String, String> {
    events
        .test_ids()
        .into_iter()
        .map(|id| {
            let status = events.status(&id).to_string();
            (id, status)
        })
        .collect()
}

fn ready() -> bool {
    root() && tool_works("cargo", &["nextest", "--version"])
}

#[test]
fn default_run_matches_nextest() {
    if !ready() {
        return;
    }
    let project = copy("nextest-crate");
    let junit = project.dir().join("psy-junit.xml");
    let (out, events) = project.run_json(&["--junit", junit.to_str().unwrap()]);
    out.code(1);
    let psy = psy_verdicts(&events);
    assert_eq!(
        psy.keys().map(String::as_str).collect::<Vec<_>>(),
        IDS,
        "{out}"
    );

    // Ignored tests: skipped, with libtest's reason; everything else as nextest says.
    let nextest = nextest_verdicts(&project, "default");
    for (id, status) in &psy {
        match nextest.get(id) {
            Some(expected) => assert_eq!(status, expected, "{id}\n{out}"),
            None => assert!(id.contains("ignored"), "nextest did not run {id}"),
        }
    }
    assert_eq!(nextest.len(), 5, "{nextest:?}");
    assert_eq!(psy["psy-fixture it::ignored_one"], "skipped");
    assert_eq!(psy["psy-fixture::it ignored_integration"], "skipped");
    let ignored = events.attempts("psy-fixture it::ignored_one");
    assert_eq!(
        ignored[0]["message"], "ignored: slow, run with --run-ignored",
        "{ignored:?}"
    );
    let summary = events.summary();
    assert_eq!(
        (summary["passed"].as_u64(), summary["skipped"].as_u64()),
        (Some(4), Some(2)),
        "{summary}"
    );

    // JUnit: ignored tests are <skipped/>, classnames are the binaries.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = parse(&xml);
    let suite = doc.one("testsuite");
    let case = |id: &str| {
        suite
            .children("testcase")
            .find(|c| c.attr("name") == id)
            .unwrap_or_else(|| panic!("no testcase {id} in {xml}"))
    };
    assert!(case("psy-fixture::it ignored_integration")
        .children("skipped")
        .next()
        .is_some());
    assert_eq!(
        case("psy-fixture::it a").attr("classname"),
        "psy-fixture::it"
    );
    assert_eq!(case("psy-fixture it::a").attr("classname"), "psy-fixture");

    // `psy list` shows the ids, the ignored tests among them.
    let listed = project.psy(&["list"]);
    listed.code(0);
    for id in IDS {
        assert!(listed.stdout.contains(id), "{id} not listed:\n{listed}");
    }
}

#[test]
fn run_ignored_matches_nextest() {
    if !ready() {
        return;
    }
    let project = copy("nextest-crate");
    let (out, events) = project.run_json(&["--run-ignored", "all"]);
    out.code(1);
    let psy = psy_verdicts(&events);
    let nextest = nextest_verdicts(&project, "all");
    assert_eq!(psy, nextest, "{out}");
    assert_eq!(psy["psy-fixture it::ignored_one"], "pass");

    let (out, events) = project.run_json(&["--run-ignored", "only"]);
    out.code(0);
    assert_eq!(
        events.test_ids(),
        [
            "psy-fixture it::ignored_one",
            "psy-fixture::it ignored_integration"
        ],
        "{out}"
    );
    assert!(events
        .test_ids()
        .iter()
        .all(|id| events.status(id) == "pass"));
}

/// A target directory under /tmp (the containers' private /tmp would hide it) is shown
/// read-only at its own path, and its tmp/ is writable: every verdict stays the same.
#[test]
fn target_directory_under_tmp() {
    if !ready() {
        return;
    }
    let project = copy("nextest-crate");
    let target = tempfile::Builder::new()
        .prefix("psy-target-")
        .tempdir_in("/tmp")
        .unwrap();
    let mut cmd = project.command(&["run", "--message-format", "json"]);
    cmd.env("CARGO_TARGET_DIR", target.path());
    let out = crate::support::Out::of(cmd);
    out.code(1);
    let events = Events::parse(&out);
    let psy = psy_verdicts(&events);
    let expected = [
        ("psy-fixture it::a", "pass"),
        ("psy-fixture it::ignored_one", "skipped"),
        ("psy-fixture it::panics_with_a_long_message", "fail"),
        ("psy-fixture::it a", "pass"),
        ("psy-fixture::it env_is_nextests", "pass"),
        ("psy-fixture::it ignored_integration", "skipped"),
        ("psy-fixture::it writes_target_tmpdir", "pass"),
    ];
    let expected: BTreeMap<String, String> = expected
        .iter()
        .map(|(id, s)| (id.to_string(), s.to_string()))
        .collect();
    assert_eq!(psy, expected, "{out}");
    assert!(
        target.path().join("debug").is_dir(),
        "cargo built into {}",
        target.path().display()
    );
}
