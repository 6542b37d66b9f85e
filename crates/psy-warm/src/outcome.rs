//! A warm child's result: pytest's reports per phase, read from the JSON the child wrote, and
//! the psy status they mean (the same mapping as a cold pytest attempt's JUnit XML).

use crate::child::ChildExit;
use crate::error::ResultError;
use psy_model::AttemptStatus;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// The worker's exit status for a child that broke before or around pytest's protocol (the
/// sandbox entry failed, say): not the test's failure.
const CHILD_BROKEN: i32 = 70;

/// pytest's verdict on one item, as its terminal reporter counts it (`pytest_report_teststatus`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Category {
    Passed,
    Failed,
    /// A setup or teardown failed.
    Error,
    Skipped,
    /// An expected failure (`xfail`).
    XFailed,
    /// An unexpected pass of a non-strict `xfail` (a strict one is `Failed`).
    XPassed,
    /// A category a plugin added.
    Other(String),
}

impl Category {
    fn parse(text: &str) -> Category {
        match text {
            "passed" => Category::Passed,
            "failed" => Category::Failed,
            "error" => Category::Error,
            "skipped" => Category::Skipped,
            "xfailed" => Category::XFailed,
            "xpassed" => Category::XPassed,
            other => Category::Other(other.to_string()),
        }
    }
}

/// One phase's report (`setup`, `call`, `teardown`).
#[derive(Clone, Debug, Deserialize)]
pub struct Phase {
    pub when: String,
    /// `passed`, `failed` or `skipped`: the report's own outcome.
    pub outcome: String,
    /// pytest's category for it; empty for a passing setup or teardown.
    pub category: String,
    /// Seconds.
    pub duration: f64,
    /// The failure text, or a skip's reason.
    pub longrepr: Option<String>,
    /// The `xfail` reason, for an expected failure or an unexpected pass.
    pub wasxfail: Option<String>,
}

/// What a warm child wrote to its result file.
#[derive(Clone, Debug, Deserialize)]
pub struct WarmOutcome {
    pub nodeid: String,
    /// The item's category: the first of failed, error, skipped, xfailed, xpassed, passed among
    /// its phases.
    pub outcome: String,
    pub phases: Vec<Phase>,
    /// What the worker wants the user to know (threads alive in the parent when it forked).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl WarmOutcome {
    pub fn read(path: &Path) -> Result<WarmOutcome, ResultError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResultError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ResultError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    pub fn category(&self) -> Category {
        Category::parse(&self.outcome)
    }

    /// The time pytest measured for the phases (setup, call, teardown).
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.phases.iter().map(|p| p.duration.max(0.0)).sum())
    }

    /// The phase that decided the category.
    fn deciding(&self) -> Option<&Phase> {
        self.phases.iter().find(|p| p.category == self.outcome)
    }
}

/// A warm attempt's status, with the message psy shows beside it.
#[derive(Clone, Debug)]
pub struct WarmVerdict {
    pub status: AttemptStatus,
    pub message: Option<String>,
    /// The result, when the child wrote one.
    pub outcome: Option<WarmOutcome>,
}

/// The psy status of a warm child that ended as `exit` and wrote (or not) `result`.
///
/// As for a cold pytest attempt: passed, xfailed and non-strict xpassed pass; failed, an error
/// in a fixture and a strict xpass fail (pytest exits 1); skipped is skipped. A child killed by a
/// signal fails here: the driver knows when the kill was its timeout or the OOM killer and says
/// `timeout` or `oom` instead. Without a readable result the exit status decides.
pub fn verdict(exit: ChildExit, result: &Path) -> WarmVerdict {
    let code = match exit {
        ChildExit::Signal(signal) => {
            return WarmVerdict {
                status: AttemptStatus::Fail,
                message: Some(format!("killed by signal {signal}")),
                outcome: WarmOutcome::read(result).ok(),
            }
        }
        ChildExit::Code(code) => code,
    };
    let outcome = match WarmOutcome::read(result) {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::debug!("{e}; the exit status decides");
            let (status, message) = match code {
                0 => (
                    AttemptStatus::Pass,
                    "exited 0 before pytest reported".to_string(),
                ),
                CHILD_BROKEN => (
                    AttemptStatus::Error,
                    "the warm child broke before running the test (its stderr says why)"
                        .to_string(),
                ),
                code => (
                    AttemptStatus::Fail,
                    format!("exited with status {code} before pytest reported"),
                ),
            };
            return WarmVerdict {
                status,
                message: Some(message),
                outcome: None,
            };
        }
    };
    let reason = || {
        outcome
            .deciding()
            .and_then(|p| p.wasxfail.clone().or_else(|| p.longrepr.clone()))
            .map(|text| text.lines().last().unwrap_or_default().to_string())
    };
    let (status, message) = match outcome.category() {
        Category::Passed => (AttemptStatus::Pass, None),
        Category::XFailed => (
            AttemptStatus::Pass,
            reason().map(|r| format!("xfailed: {r}")),
        ),
        Category::XPassed => (AttemptStatus::Pass, Some("xpassed".to_string())),
        Category::Skipped => (
            AttemptStatus::Skipped,
            reason().map(|r| format!("skipped: {r}")),
        ),
        Category::Failed | Category::Error => (AttemptStatus::Fail, reason()),
        Category::Other(_) if code == 0 => (AttemptStatus::Pass, None),
        Category::Other(_) => (AttemptStatus::Fail, None),
    };
    WarmVerdict {
        status,
        message,
        outcome: Some(outcome),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(outcome: &str, phase: &str) -> String {
        format!(
            r#"{{"nodeid": "t.py::a", "outcome": "{outcome}", "warnings": [], "phases": [
            {{"when": "setup", "outcome": "passed", "category": "", "duration": 0.5, "longrepr": null, "wasxfail": null}},
            {phase}]}}"#
        )
    }

    fn verdict_of(exit: ChildExit, text: Option<&str>) -> WarmVerdict {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        if let Some(text) = text {
            std::fs::write(&path, text).unwrap();
        }
        verdict(exit, &path)
    }

    #[test]
    fn pytest_categories_map_as_for_cold_attempts() {
        let call = |outcome: &str, category: &str, longrepr: &str, wasxfail: &str| {
            format!(
                r#"{{"when": "call", "outcome": "{outcome}", "category": "{category}", "duration": 0.25, "longrepr": {longrepr}, "wasxfail": {wasxfail}}}"#
            )
        };
        let cases = [
            (
                "passed",
                call("passed", "passed", "null", "null"),
                0,
                AttemptStatus::Pass,
                None,
            ),
            (
                "failed",
                call("failed", "failed", r#""x\nE assert 1 == 2""#, "null"),
                1,
                AttemptStatus::Fail,
                Some("E assert 1 == 2"),
            ),
            (
                "skipped",
                call("skipped", "skipped", r#""not here""#, "null"),
                0,
                AttemptStatus::Skipped,
                Some("skipped: not here"),
            ),
            (
                "xfailed",
                call("skipped", "xfailed", "null", r#""bug""#),
                0,
                AttemptStatus::Pass,
                Some("xfailed: bug"),
            ),
            (
                "xpassed",
                call("passed", "xpassed", "null", r#""bug""#),
                0,
                AttemptStatus::Pass,
                Some("xpassed"),
            ),
        ];
        for (outcome, phase, code, status, message) in cases {
            let v = verdict_of(ChildExit::Code(code), Some(&result(outcome, &phase)));
            assert_eq!(v.status, status, "{outcome}");
            assert_eq!(v.message.as_deref(), message, "{outcome}");
        }
        let passed = result("passed", &call("passed", "passed", "null", "null"));
        let outcome: WarmOutcome = serde_json::from_str(&passed).unwrap();
        assert_eq!(outcome.duration(), Duration::from_millis(750));
    }

    #[test]
    fn without_a_result_the_exit_status_decides() {
        assert_eq!(
            verdict_of(ChildExit::Code(3), None).status,
            AttemptStatus::Fail
        );
        assert_eq!(
            verdict_of(ChildExit::Code(0), None).status,
            AttemptStatus::Pass
        );
        assert_eq!(
            verdict_of(ChildExit::Code(70), None).status,
            AttemptStatus::Error
        );
        assert_eq!(
            verdict_of(ChildExit::Code(0), Some("{")).status,
            AttemptStatus::Pass
        );
        let killed = verdict_of(ChildExit::Signal(9), None);
        assert_eq!(killed.status, AttemptStatus::Fail);
        assert_eq!(killed.message.as_deref(), Some("killed by signal 9"));
    }
}
