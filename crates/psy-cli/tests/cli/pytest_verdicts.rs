//! psy on a pytest suite (`tests/fixtures/pytest-verdicts`) reports each test as pytest does:
//! skipped tests `skipped`, expected failures and non-strict unexpected passes `pass`, a strict
//! unexpected pass and an error in a fixture `fail`; and a run where pytest selects nothing
//! (exit status 5) is an `error` saying so, not a failure.

use crate::fixtures::{copy, tool_works};
use crate::support::root;

fn ready() -> bool {
    root() && tool_works("python3", &["-m", "pytest", "--version"])
}

#[test]
fn each_test_as_pytest_reports_it() {
    if !ready() {
        return;
    }
    let project = copy("pytest-verdicts");
    let (out, events) = project.run_json(&["--junit", "junit.xml"]);
    out.code(1);
    assert_fixture_verdicts(&out, &events);
    let skipped = events.attempts("tests/test_verdicts.py::test_skipped_by_mark");
    assert_eq!(skipped[0]["message"], "skipped: not on this machine");
    assert_eq!(events.summary()["skipped"], 4);

    // JUnit: the file is the classname; skipped tests are <skipped/>.
    let xml = std::fs::read_to_string(project.dir().join("junit.xml")).unwrap();
    let doc = crate::junit::parse(&xml);
    let suite = doc.one("testsuite");
    let case = suite
        .children("testcase")
        .find(|c| c.attr("name") == "tests/test_verdicts.py::test_skipped_inside")
        .unwrap_or_else(|| panic!("no testcase in {xml}"));
    assert_eq!(case.attr("classname"), "tests/test_verdicts.py");
    case.one("skipped");
}

/// One psy test per file: a file whose tests were all skipped is skipped, a file with a
/// failure fails.
#[test]
fn per_file() {
    if !ready() {
        return;
    }
    let project = copy("pytest-verdicts");
    project.file(
        "psyduck.toml",
        "[[discover]]\npytest = { per = \"file\" }\n",
    );
    let (out, events) = project.run_json(&[]);
    out.code(1);
    assert_eq!(
        events.status("tests/test_all_skipped.py"),
        "skipped",
        "{out}"
    );
    assert_eq!(events.status("tests/test_verdicts.py"), "fail", "{out}");
}

/// pytest's exit status 5 (nothing collected or selected) is an error naming the cause.
#[test]
fn nothing_selected_is_an_error_not_a_failure() {
    if !ready() {
        return;
    }
    let project = copy("pytest-verdicts");
    project.file(
        "psyduck.toml",
        "[[discover]]\npytest = { args = [\"tests/test_verdicts.py\"] }\n\n\
         [[variant]]\nname = \"none\"\nargs = [\"-k\", \"no_such_test\"]\n",
    );
    let (out, events) = project.run_json(&["tests/test_verdicts.py::test_passes"]);
    out.code(1);
    let id = "tests/test_verdicts.py::test_passes@none";
    assert_eq!(events.status(id), "error", "{out}");
    let attempt = &events.attempts(id)[0];
    assert_eq!(attempt["exit"]["code"], 5, "{attempt}");
    assert!(
        attempt["message"]
            .as_str()
            .is_some_and(|m| m.contains("pytest ran no test (exit status 5")),
        "{attempt}"
    );
}

/// The `pytest-verdicts` fixture's tests came back as pytest reports them (cold or warm).
pub(crate) fn assert_fixture_verdicts(
    out: &impl std::fmt::Display,
    events: &crate::support::Events,
) {
    let expected = [
        ("tests/test_all_skipped.py::test_one", "skipped"),
        ("tests/test_all_skipped.py::test_two", "skipped"),
        ("tests/test_verdicts.py::test_error_in_fixture", "fail"),
        ("tests/test_verdicts.py::test_fails", "fail"),
        ("tests/test_verdicts.py::test_passes", "pass"),
        ("tests/test_verdicts.py::test_skipped_by_mark", "skipped"),
        ("tests/test_verdicts.py::test_skipped_inside", "skipped"),
        ("tests/test_verdicts.py::test_xfail", "pass"),
        ("tests/test_verdicts.py::test_xpass", "pass"),
        ("tests/test_verdicts.py::test_xpass_strict", "fail"),
    ];
    let got: Vec<(String, String)> = events
        .test_ids()
        .into_iter()
        .map(|id| {
            let status = events.status(&id).to_string();
            (id, status)
        })
        .collect();
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(id, s)| (id.to_string(), s.to_string()))
        .collect();
    assert_eq!(got, want, "{out}");
}
