//! pytest's verdict on one attempt, from the JUnit XML it wrote: a test skipped by pytest exits
//! 0 like a passing one, and exit status 5 means pytest ran nothing at all.

use super::Verdict;
use psy_model::AttemptStatus;
use quick_xml::events::Event;
use quick_xml::Reader;
use std::path::Path;

/// pytest's exit status when it collected or selected no test.
const NO_TESTS: i32 = 5;

/// How pytest reported one `<testcase>`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Case {
    Passed,
    /// `pytest.skip`, `@mark.skip`, `@mark.skipif`: with the reason.
    Skipped(String),
    /// An expected failure: pytest counts it as a success (`xfailed`).
    XFailed,
    /// `<failure>` or `<error>` (a strict xpass is a failure).
    Failed,
}

pub(super) fn verdict(code: i32, result_file: &Path) -> Option<Verdict> {
    if code == NO_TESTS {
        return Some(Verdict {
            status: AttemptStatus::Error,
            message: Some(
                "pytest ran no test (exit status 5: nothing collected or every test deselected)"
                    .to_string(),
            ),
        });
    }
    if code != 0 {
        return None;
    }
    let xml = match std::fs::read_to_string(result_file) {
        Ok(xml) => xml,
        Err(e) => {
            tracing::warn!(
                "pytest's result {}: {e}; the exit status decides",
                result_file.display()
            );
            return None;
        }
    };
    let cases = match cases(&xml) {
        Ok(cases) => cases,
        Err(e) => {
            tracing::warn!(
                "pytest's result {}: {e}; the exit status decides",
                result_file.display()
            );
            return None;
        }
    };
    // Skipped only when pytest ran nothing else: a file with one passing test passed.
    let mut reasons = Vec::new();
    for case in &cases {
        match case {
            Case::Skipped(reason) => reasons.push(reason.as_str()),
            _ => return None,
        }
    }
    reasons.dedup();
    (!reasons.is_empty()).then(|| Verdict {
        status: AttemptStatus::Skipped,
        message: Some(format!("skipped: {}", reasons.join("; "))),
    })
}

/// Every `<testcase>` of pytest's JUnit XML, in order.
fn cases(xml: &str) -> Result<Vec<Case>, quick_xml::Error> {
    let mut reader = Reader::from_str(xml);
    let mut cases = Vec::new();
    let mut current: Option<Case> = None;
    loop {
        let event = reader.read_event()?;
        let (start, empty) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            match e.name().as_ref() {
                b"testcase" if empty => cases.push(Case::Passed),
                b"testcase" => current = Some(Case::Passed),
                b"failure" | b"error" => current = Some(Case::Failed),
                b"skipped" if current != Some(Case::Failed) => {
                    let attr = |name: &[u8]| {
                        e.try_get_attribute(name)
                            .ok()
                            .flatten()
                            .and_then(|a| a.unescape_value().ok())
                            .map(|v| v.into_owned())
                    };
                    current = Some(match attr(b"type").as_deref() {
                        Some("pytest.xfail") => Case::XFailed,
                        _ => Case::Skipped(attr(b"message").unwrap_or_default()),
                    });
                }
                _ => {}
            }
        }
        match event {
            Event::End(e) if e.name().as_ref() == b"testcase" => {
                cases.extend(current.take());
            }
            Event::Eof => return Ok(cases),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="2" tests="6">
<testcase classname="t" name="ok" time="0.001" />
<testcase classname="t" name="skip"><skipped type="pytest.skip" message="not on this machine">t.py:3: not on this machine</skipped></testcase>
<testcase classname="t" name="xfail"><skipped type="pytest.xfail" message="known bug" /></testcase>
<testcase classname="t" name="strict"><failure message="[XPASS(strict)] must fail">x</failure></testcase>
<testcase classname="t" name="err"><error message="failed on setup">x</error></testcase>
<testcase classname="t" name="xpass" time="0.001"></testcase>
</testsuite></testsuites>"#;

    #[test]
    fn reads_every_case() {
        assert_eq!(
            cases(XML).unwrap(),
            [
                Case::Passed,
                Case::Skipped("not on this machine".into()),
                Case::XFailed,
                Case::Failed,
                Case::Failed,
                Case::Passed
            ]
        );
    }

    fn verdict_of(xml: Option<&str>, code: i32) -> Option<Verdict> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.xml");
        if let Some(xml) = xml {
            std::fs::write(&file, xml).unwrap();
        }
        verdict(code, &file)
    }

    #[test]
    fn skipped_only_when_every_case_was_skipped() {
        let one = |case: &str| format!("<testsuites><testsuite>{case}</testsuite></testsuites>");
        let skipped = one(
            r#"<testcase name="a"><skipped type="pytest.skip" message="why">x</skipped></testcase>"#,
        );
        let v = verdict_of(Some(&skipped), 0).unwrap();
        assert_eq!(v.status, AttemptStatus::Skipped);
        assert_eq!(v.message.as_deref(), Some("skipped: why"));
        // An expected failure passes, as pytest counts it.
        let xfail =
            one(r#"<testcase name="a"><skipped type="pytest.xfail" message="bug" /></testcase>"#);
        assert_eq!(verdict_of(Some(&xfail), 0), None);
        assert_eq!(verdict_of(Some(XML), 0), None);
        // Exit 5: nothing ran, an error rather than a failure; a failing exit stands.
        assert_eq!(verdict_of(None, 5).unwrap().status, AttemptStatus::Error);
        assert_eq!(verdict_of(Some(&skipped), 1), None);
        // No or broken result: the exit status decides.
        assert_eq!(verdict_of(None, 0), None);
        assert_eq!(verdict_of(Some("<testsuites><testcase>"), 0), None);
    }
}
