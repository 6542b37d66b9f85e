//! Adapter hooks: what a discovered test's own runner (nextest, pytest) adds to an attempt.
//! Before it starts: that runner's per-attempt environment and the path of its result file.
//! After it ends: the verdict read from that runner's own result, which the exit status alone
//! cannot tell (a skipped test exits 0 as a passing one does).

mod libtest;
mod pytest;

use psy_model::{Adapter, AttemptStatus, RunId, TestSpec, RESULT_FILE};
use std::path::{Path, PathBuf};

/// The file in the attempt's scratch directory where the test's runner writes its result.
pub(crate) fn result_file(scratch: &Path) -> PathBuf {
    scratch.join(".psy-result.xml")
}

/// The test's command with [`RESULT_FILE`] replaced by the attempt's result file.
pub(crate) fn command(test: &TestSpec, scratch: &Path) -> Vec<String> {
    if test.adapter.is_none() {
        return test.command.clone();
    }
    let file = result_file(scratch).display().to_string();
    test.command
        .iter()
        .map(|arg| arg.replace(RESULT_FILE, &file))
        .collect()
}

/// The environment the test's runner would set for this attempt (on top of the test's own).
pub(crate) fn env(test: &TestSpec, run_id: &RunId, attempt: u32) -> Vec<(String, String)> {
    match test.adapter {
        Some(Adapter::Nextest) => {
            let binary = test
                .env
                .get("NEXTEST_BINARY_ID")
                .cloned()
                .unwrap_or_default();
            let name = test
                .env
                .get("NEXTEST_TEST_NAME")
                .cloned()
                .unwrap_or_default();
            vec![
                ("NEXTEST_RUN_ID".into(), run_id.to_string()),
                ("NEXTEST_ATTEMPT".into(), attempt.to_string()),
                (
                    "NEXTEST_TOTAL_ATTEMPTS".into(),
                    (test.retries + 1).to_string(),
                ),
                (
                    "NEXTEST_ATTEMPT_ID".into(),
                    format!("{run_id}:{binary}${name}"),
                ),
            ]
        }
        Some(Adapter::Pytest) | None => Vec::new(),
    }
}

/// A verdict read from the test runner's own result.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) status: AttemptStatus,
    pub(crate) message: Option<String>,
}

/// The runner's verdict on an attempt that exited with `code` (not killed, not a set-up
/// error), or `None` when the exit status says it all.
pub(crate) fn verdict(
    test: &TestSpec,
    code: i32,
    stdout: &Path,
    scratch: &Path,
) -> Option<Verdict> {
    match test.adapter? {
        Adapter::Nextest => libtest::verdict(code, stdout, test),
        Adapter::Pytest if test.warm.is_some() => {
            // Started warm: the child's own result; started cold: pytest's JUnit XML.
            let warm = crate::executor::warm_result_file(scratch);
            if !warm.exists() {
                return pytest::verdict(code, &result_file(scratch));
            }
            let verdict = psy_warm::verdict(psy_warm::ChildExit::Code(code), &warm);
            Some(Verdict {
                status: verdict.status,
                message: verdict.message,
            })
        }
        Adapter::Pytest => pytest::verdict(code, &result_file(scratch)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(adapter: Option<Adapter>) -> TestSpec {
        let mut test = crate::attempt::tests::spec();
        test.command = vec!["pytest".into(), format!("--junit-xml={RESULT_FILE}")];
        test.env = [
            ("NEXTEST_BINARY_ID".to_string(), "c::it".to_string()),
            ("NEXTEST_TEST_NAME".to_string(), "a".to_string()),
        ]
        .into();
        test.retries = 2;
        test.adapter = adapter;
        test
    }

    #[test]
    fn result_file_is_replaced_only_for_adapters() {
        let scratch = Path::new("/s/slot-1");
        assert_eq!(
            command(&spec(Some(Adapter::Pytest)), scratch)[1],
            "--junit-xml=/s/slot-1/.psy-result.xml"
        );
        assert_eq!(
            command(&spec(None), scratch)[1],
            format!("--junit-xml={RESULT_FILE}")
        );
    }

    #[test]
    fn nextest_attempt_environment() {
        let env = env(&spec(Some(Adapter::Nextest)), &RunId("r1".into()), 2);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("NEXTEST_RUN_ID"), Some("r1"));
        assert_eq!(get("NEXTEST_ATTEMPT"), Some("2"));
        assert_eq!(get("NEXTEST_TOTAL_ATTEMPTS"), Some("3"));
        assert_eq!(get("NEXTEST_ATTEMPT_ID"), Some("r1:c::it$a"));
        assert!(super::env(&spec(None), &RunId("r1".into()), 1).is_empty());
    }
}
