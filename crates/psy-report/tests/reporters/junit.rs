//! The JUnit file: parsed back with quick-xml (independently of quick-junit's writer).

use crate::script::{script, ERROR, FAIL, FLAKY, OOM, PASS, RUN, SKIPPED, TIMEOUT, WARNING};
use psy_report::{JunitOptions, JunitReporter, Reporter, RunEvent};
use quick_xml::events::{BytesStart, Event};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn attr(&self, key: &str) -> &str {
        self.attrs
            .get(key)
            .unwrap_or_else(|| panic!("<{}> has no {key}: {self:?}", self.name))
    }

    fn all(&self, name: &str) -> Vec<&Node> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    fn one(&self, name: &str) -> &Node {
        let found = self.all(name);
        assert_eq!(
            found.len(),
            1,
            "expected one <{name}> in <{}>: {self:#?}",
            self.name
        );
        found[0]
    }

    fn case(&self, name: &str) -> &Node {
        self.all("testcase")
            .into_iter()
            .find(|c| c.attr("name") == name)
            .expect(name)
    }
}

fn element(e: &BytesStart<'_>) -> Node {
    let mut node = Node {
        name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
        ..Node::default()
    };
    for a in e.attributes() {
        let a = a.unwrap();
        let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
        node.attrs
            .insert(key, a.unescape_value().unwrap().into_owned());
    }
    node
}

/// The document as a tree; panics on malformed XML.
fn parse(xml: &str) -> Node {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack = vec![Node {
        name: "document".into(),
        ..Node::default()
    }];
    loop {
        let top = stack.len() - 1;
        match reader.read_event().unwrap() {
            Event::Start(e) => stack.push(element(&e)),
            Event::Empty(e) => stack[top].children.push(element(&e)),
            Event::End(e) => {
                let node = stack.pop().unwrap();
                assert_eq!(node.name.as_bytes(), e.name().as_ref());
                stack.last_mut().unwrap().children.push(node);
            }
            Event::Text(t) => stack[top].text.push_str(&t.decode().unwrap()),
            Event::CData(t) => stack[top].text.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                let text = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r.decode().unwrap())
                        .unwrap()
                        .to_string(),
                };
                stack[top].text.push_str(&text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements in:\n{xml}");
    stack.pop().unwrap()
}

fn write_report(events: &[RunEvent], finish: bool) -> (tempfile::TempDir, String) {
    write_report_with(events, finish, JunitOptions::default())
}

fn write_report_with(
    events: &[RunEvent],
    finish: bool,
    options: JunitOptions,
) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/junit.xml");
    let mut r = JunitReporter::new(&path, options);
    for e in events {
        r.on_event(e).unwrap();
    }
    if finish {
        r.finish().unwrap();
    }
    let xml = std::fs::read_to_string(&path).unwrap();
    (dir, xml)
}

#[test]
fn structure_counts_and_attributes() {
    let s = script();
    let (_dir, xml) = write_report(&s.events, true);
    let doc = parse(&xml);
    let suites = doc.one("testsuites");
    assert_eq!(suites.attr("name"), RUN);
    assert_eq!(suites.attr("tests"), "7");
    let suite = suites.one("testsuite");
    assert_eq!(suite.attr("name"), RUN);
    assert_eq!(suite.attr("tests"), "7");
    // fail + timeout + oom are failures; error is an error; flaky passes.
    assert_eq!(suite.attr("failures"), "3");
    assert_eq!(suite.attr("errors"), "1");
    assert_eq!(suite.attr("time"), "12.345");
    assert!(
        suite.attr("timestamp").starts_with("2026-11-18T"),
        "{}",
        suite.attr("timestamp")
    );

    let props: Vec<(&str, &str)> = suite
        .one("properties")
        .all("property")
        .iter()
        .map(|p| (p.attr("name"), p.attr("value")))
        .collect();
    assert_eq!(
        props,
        [("run-id", RUN), ("warning", WARNING), ("not-run", "1")]
    );

    let names: Vec<&str> = suite
        .all("testcase")
        .iter()
        .map(|c| c.attr("name"))
        .collect();
    assert_eq!(names, [PASS, FAIL, FLAKY, OOM, TIMEOUT, ERROR, SKIPPED]);

    let skipped = suite.case(SKIPPED);
    assert_eq!(
        skipped.one("skipped").attr("message"),
        "ignored: needs a GPU"
    );

    let pass = suite.case(PASS);
    assert_eq!(pass.attr("classname"), "unit::math");
    assert_eq!(pass.attr("time"), "0.020");
    assert!(pass.children.is_empty(), "a pass has no children: {pass:?}");
}

#[test]
fn failures_carry_type_message_reruns_and_output() {
    let s = script();
    let (_dir, xml) = write_report(&s.events, true);
    let doc = parse(&xml);
    let suite = doc.one("testsuites").one("testsuite");

    let fail = suite.case(FAIL);
    assert_eq!(fail.attr("classname"), "unit::parser");
    assert_eq!(fail.attr("time"), "0.490");
    let failure = fail.one("failure");
    assert_eq!(failure.attr("type"), "fail");
    assert_eq!(failure.attr("message"), "attempt 2: fail, exit 1");
    let rerun = fail.one("rerunFailure");
    assert_eq!(rerun.attr("message"), "attempt 1: fail, exit 1");
    assert_eq!(rerun.attr("time"), "0.240");
    assert_eq!(rerun.one("system-out").text, "first try output\n");
    let out = &fail.one("system-out").text;
    assert!(
        out.contains("parser out 1\n") && out.contains("parser out 30\n"),
        "{out}"
    );
    assert_eq!(
        fail.one("system-err").text,
        "assertion failed: left == right\n"
    );

    let oom = suite.case(OOM);
    assert_eq!(oom.attr("classname"), RUN, "no module part: the suite name");
    assert_eq!(oom.one("failure").attr("type"), "oom");
    assert_eq!(
        oom.one("failure").attr("message"),
        "attempt 1: oom, peak 512MiB of 512MiB"
    );

    let slow = suite.case(TIMEOUT);
    assert_eq!(slow.one("failure").attr("type"), "timeout");
    assert_eq!(
        slow.one("failure").attr("message"),
        "attempt 1: timeout after 10.000s"
    );
    assert_eq!(slow.one("system-out").text, "waiting...\n");

    let broken = suite.case(ERROR);
    assert!(broken.all("failure").is_empty());
    let error = broken.one("error");
    assert_eq!(error.attr("type"), "error");
    assert_eq!(error.text, "command not found: frobnicate");
    // No output file: the stream wrote nothing.
    assert!(broken.all("system-out").is_empty());
}

#[test]
fn flaky_tests_pass_with_flaky_failures() {
    let s = script();
    let (_dir, xml) = write_report(&s.events, true);
    let doc = parse(&xml);
    let flaky = doc.one("testsuites").one("testsuite").case(FLAKY);
    assert_eq!(flaky.attr("classname"), "net");
    assert!(flaky.all("failure").is_empty() && flaky.all("error").is_empty());
    let ff = flaky.one("flakyFailure");
    assert_eq!(ff.attr("type"), "fail");
    assert_eq!(ff.attr("message"), "attempt 1: fail, signal 9 (SIGKILL)");
    assert_eq!(ff.one("system-err").text, "dns lookup failed\n");
    assert!(
        flaky.all("system-out").is_empty(),
        "passing output is not kept"
    );
}

#[test]
fn quick_junit_reads_it_back() {
    let s = script();
    let (_dir, xml) = write_report(&s.events, true);
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!(report.tests, 7);
    assert_eq!(report.failures, 3);
    assert_eq!(report.errors, 1);
}

#[test]
fn aborted_run_writes_what_it_has_on_finish() {
    let s = script();
    let cut = s
        .events
        .iter()
        .position(|e| matches!(e, RunEvent::RunFinished { .. }))
        .unwrap();
    // Without the last two tests (error, skipped: three events each).
    let (_dir, xml) = write_report(&s.events[..cut - 6], true);
    let doc = parse(&xml);
    let suite = doc.one("testsuites").one("testsuite");
    assert_eq!(suite.attr("tests"), "5");
    let props = suite.one("properties").all("property");
    assert!(props
        .iter()
        .any(|p| p.attr("name") == "aborted" && p.attr("value") == "true"));
}

#[test]
fn written_at_run_finished_before_finish() {
    let s = script();
    let (_dir, xml) = write_report(&s.events, false);
    assert!(xml.contains("<testsuites"));
}

#[test]
fn suite_name_option_and_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.xml");
    let options = JunitOptions {
        suite_name: Some("nightly".into()),
        ..JunitOptions::default()
    };
    let mut r = JunitReporter::new(&path, options);
    r.on_event(&script().events[0]).unwrap();
    r.finish().unwrap();
    let doc = parse(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(
        doc.one("testsuites").one("testsuite").attr("name"),
        "nightly"
    );

    let mut r = JunitReporter::new(&path, JunitOptions::default());
    r.finish().unwrap();
    let doc = parse(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(
        doc.one("testsuites").one("testsuite").attr("name"),
        "psyduck"
    );
    assert_eq!(doc.one("testsuites").attr("tests"), "0");
}

#[test]
fn unwritable_path_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let path = blocker.join("junit.xml");
    let mut r = JunitReporter::new(&path, JunitOptions::default());
    let err = r.finish().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("could not write the JUnit report to {}", path.display())
    );
}

/// Each test's group (binary, pytest file, discover entry) is its classname when given.
#[test]
fn classnames_from_groups() {
    let s = script();
    let options = JunitOptions {
        classnames: [(psy_model::TestId(SKIPPED.into()), "c::it".to_string())].into(),
        ..JunitOptions::default()
    };
    let (_dir, xml) = write_report_with(&s.events, true, options);
    let doc = parse(&xml);
    let suite = doc.one("testsuites").one("testsuite");
    assert_eq!(suite.case(SKIPPED).attr("classname"), "c::it");
    // The others keep the module part of their id.
    assert_eq!(suite.case(PASS).attr("classname"), "unit::math");
}
