//! `--junit PATH`: well-formed JUnit XML with one testcase per test; flaky tests pass with a
//! `flakyFailure`, failures and timeouts are `failure`s.

use crate::support::{root, Project};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::collections::BTreeMap;

/// Just enough of a DOM to assert on: element name, attributes, child elements.
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attrs: BTreeMap<String, String>,
    pub(crate) children: Vec<Element>,
}

impl Element {
    fn from_start(e: &BytesStart<'_>) -> Element {
        let attrs = e
            .attributes()
            .map(|a| {
                let a = a.expect("well-formed attribute");
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.unescape_value().expect("valid escapes").into_owned(),
                )
            })
            .collect();
        Element {
            name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
            attrs,
            children: Vec::new(),
        }
    }

    pub(crate) fn attr(&self, key: &str) -> &str {
        self.attrs
            .get(key)
            .unwrap_or_else(|| panic!("<{}> has no {key}: {self:?}", self.name))
    }

    pub(crate) fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first child element called `name`.
    #[track_caller]
    pub(crate) fn one(&self, name: &str) -> &Element {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("<{}> has no <{name}>: {self:?}", self.name))
    }
}

/// Parses `xml`, failing on anything malformed (mismatched tags, bad escapes, trailing junk).
pub(crate) fn parse(xml: &str) -> Element {
    let mut reader = Reader::from_str(xml);
    let mut stack = vec![Element::default()];
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(Element::from_start(&e)),
            Event::Empty(e) => stack
                .last_mut()
                .unwrap()
                .children
                .push(Element::from_start(&e)),
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().expect("balanced tags").children.push(done);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements");
    let mut document = stack.pop().unwrap();
    assert_eq!(document.children.len(), 1, "one root element");
    document.children.pop().unwrap()
}

#[test]
fn junit_report() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "pass"
command = ["true"]
[[test]]
name = "fail"
command = ["sh", "-c", "echo 'expected <1> & got 2' >&2; exit 1"]
[[test]]
name = "flaky"
command = ["sh", "-c", "[ \"$PSY_ATTEMPT\" -ge 2 ]"]
retries = 1
[[test]]
name = "slow"
command = ["sleep", "100"]
timeout = "500ms"
"#,
    );
    let out = p.psy(&["run", "--junit", "reports/junit.xml"]);
    out.code(1);
    let path = p.dir().join("reports/junit.xml");
    let xml = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}\n{out}", path.display()));
    let root = parse(&xml);

    assert_eq!(root.name, "testsuites");
    let suites: Vec<&Element> = root.children("testsuite").collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    assert_eq!(suite.attr("tests"), "4");
    assert_eq!(suite.attr("failures"), "2", "fail and timeout");
    assert_eq!(suite.attr("errors"), "0");
    assert_eq!(root.attr("tests"), "4");
    assert_eq!(root.attr("failures"), "2");

    let cases: BTreeMap<&str, &Element> = suite
        .children("testcase")
        .map(|c| (c.attr("name"), c))
        .collect();
    assert_eq!(
        cases.keys().copied().collect::<Vec<_>>(),
        ["fail", "flaky", "pass", "slow"]
    );

    assert!(cases["pass"].children.is_empty(), "{:?}", cases["pass"]);

    let fail: Vec<&Element> = cases["fail"].children("failure").collect();
    assert_eq!(fail.len(), 1, "{:?}", cases["fail"]);
    assert_eq!(fail[0].attr("type"), "fail");
    // Its stderr survives escaping as text.
    assert!(xml.contains("expected &lt;1&gt; &amp; got 2"), "{xml}");

    let flaky = cases["flaky"];
    assert_eq!(flaky.children("failure").count(), 0, "{flaky:?}");
    assert_eq!(flaky.children("error").count(), 0, "{flaky:?}");
    let reruns: Vec<&Element> = flaky.children("flakyFailure").collect();
    assert_eq!(reruns.len(), 1, "{flaky:?}");
    assert_eq!(reruns[0].attr("type"), "fail");

    let slow: Vec<&Element> = cases["slow"].children("failure").collect();
    assert_eq!(slow.len(), 1, "{:?}", cases["slow"]);
    assert_eq!(slow[0].attr("type"), "timeout");
}
