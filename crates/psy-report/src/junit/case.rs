//! Turning one test's attempts into a JUnit `<testcase>`.

use crate::format;
use crate::logs::{Blob, RunLogs};
use crate::tail::{clean_line, read_tail, Tail};
use crate::text::escape;
use chrono::{DateTime, FixedOffset};
use psy_model::{AttemptResult, AttemptStatus, LogStream, Resources, TestResult, TestStatus};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestRerun, XmlString};
use std::time::Duration;

/// The `classname` of a test without a group: the module part of its name (before the last `::`, else before
/// the last `/`), without the variant; names without a module part get the suite name. CI UIs
/// group test cases by classname, so `parser::lexer::eof@debug` lands under `parser::lexer`.
pub(crate) fn classname<'a>(test_id: &'a str, suite: &'a str) -> &'a str {
    let name = test_id
        .rsplit_once('@')
        .map_or(test_id, |(name, _variant)| name);
    name.rsplit_once("::")
        .or_else(|| name.rsplit_once('/'))
        .map(|(module, _)| module)
        .filter(|m| !m.is_empty())
        .unwrap_or(suite)
}

/// Builds the `<testcase>` of a finished test from its attempts (in any order).
pub(crate) fn test_case(
    result: &TestResult,
    attempts: &mut [AttemptResult],
    limits: Option<&Resources>,
    classname: &str,
    logs: RunLogs<'_>,
    tail_lines: usize,
) -> TestCase {
    attempts.sort_by_key(|a| a.attempt);
    let (last, earlier) = match attempts.split_last() {
        Some((last, earlier)) => (Some(last), earlier),
        None => (None, &[][..]),
    };
    // With `--repeat`, a failing verdict may be followed by passing repetitions: the failure
    // message is the last failed attempt's.
    let last = if result.status.is_success(false) {
        last
    } else {
        attempts
            .iter()
            .rev()
            .find(|a| a.status != AttemptStatus::Pass)
            .or(last)
    };
    let earlier_failures = earlier
        .iter()
        .filter(|a| a.status != AttemptStatus::Pass)
        .map(|a| rerun(a, limits, logs, tail_lines));

    let status = match result.status {
        TestStatus::Pass => TestCaseStatus::success(),
        TestStatus::Skipped => {
            let mut status = TestCaseStatus::skipped();
            if let Some(text) = last.and_then(|a| a.message.as_deref()) {
                status.set_message(text);
            }
            status
        }
        TestStatus::Flaky => {
            let mut status = TestCaseStatus::success();
            status.add_reruns(earlier_failures);
            status
        }
        TestStatus::Fail | TestStatus::Timeout | TestStatus::Oom | TestStatus::Error => {
            let kind = kind_of_test(result.status);
            let mut status = TestCaseStatus::non_success(kind);
            status.set_type(result.status.as_str());
            status.set_message(match last {
                Some(a) => message(a, limits),
                None => format!("{} (no attempt finished)", result.status),
            });
            if let Some(text) = last.and_then(|a| a.message.as_deref()) {
                status.set_description(text);
            }
            status.add_reruns(earlier_failures);
            status
        }
    };

    // XML cannot carry control characters: they would be dropped, and `a\u{1b}b` would read `ab`.
    let id = escape(result.test_id.as_str());
    let mut case = TestCase::new(id.as_ref(), status);
    case.set_classname(escape(classname));
    case.set_time(Duration::from_millis(result.duration_ms));
    if let Some(ts) = attempts.first().and_then(|a| timestamp(a.started_at_ms)) {
        case.set_timestamp(ts);
    }
    // Passing output is not kept: the file stays small and CI UIs show output only for failures.
    if !result.status.is_success(false) {
        if let Some(last) = last {
            if let Some(out) = output_tail(logs.open(last, LogStream::Stdout), tail_lines) {
                case.set_system_out(out);
            }
            if let Some(err) = output_tail(logs.open(last, LogStream::Stderr), tail_lines) {
                case.set_system_err(err);
            }
        }
    }
    case
}

fn kind_of_test(status: TestStatus) -> NonSuccessKind {
    match status {
        TestStatus::Error => NonSuccessKind::Error,
        _ => NonSuccessKind::Failure,
    }
}

/// One failed attempt before the last: `flakyFailure` under a passing case, `rerunFailure` under
/// a failing one (`…Error` when Psyduck could not run the attempt).
fn rerun(
    a: &AttemptResult,
    limits: Option<&Resources>,
    logs: RunLogs<'_>,
    tail_lines: usize,
) -> TestRerun {
    let kind = match a.status {
        AttemptStatus::Error => NonSuccessKind::Error,
        _ => NonSuccessKind::Failure,
    };
    let mut r = TestRerun::new(kind);
    r.set_type(a.status.as_str());
    r.set_message(message(a, limits));
    r.set_time(Duration::from_millis(a.duration_ms));
    if let Some(ts) = timestamp(a.started_at_ms) {
        r.set_timestamp(ts);
    }
    if let Some(text) = &a.message {
        r.set_description(text.as_str());
    }
    if let Some(out) = output_tail(logs.open(a, LogStream::Stdout), tail_lines) {
        r.set_system_out(out);
    }
    if let Some(err) = output_tail(logs.open(a, LogStream::Stderr), tail_lines) {
        r.set_system_err(err);
    }
    r
}

/// The `message` attribute: `attempt 2: fail, exit 1`, `attempt 1: oom, peak 512MiB of 512MiB`.
fn message(a: &AttemptResult, limits: Option<&Resources>) -> String {
    let mut msg = format!("attempt {}: {}", a.attempt, a.status);
    match format::attempt_end(a, limits) {
        Some(detail) => msg.push_str(&format!(", {detail}")),
        None if a.status == AttemptStatus::Timeout => {
            msg.push_str(&format!(" after {}", format::seconds(a.duration_ms)));
        }
        None => {}
    }
    msg
}

fn timestamp(ms: u64) -> Option<DateTime<FixedOffset>> {
    DateTime::from_timestamp_millis(i64::try_from(ms).ok()?).map(|t| t.fixed_offset())
}

/// The last lines of an output file, or a note saying why there are none to show.
fn output_tail(blob: Blob, max_lines: usize) -> Option<XmlString> {
    let path = &blob.location;
    match read_tail(blob.content, max_lines) {
        Tail::Empty => None,
        Tail::Unreadable(e) => Some(format!("({} could not be read: {e})", path.display()).into()),
        Tail::Lines { lines, cut } => {
            let mut text = String::new();
            if cut {
                text.push_str(&format!(
                    "(last {} lines of {})\n",
                    lines.len(),
                    path.display()
                ));
            }
            for line in &lines {
                text.push_str(&clean_line(line, false));
                text.push('\n');
            }
            Some(text.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classnames() {
        assert_eq!(classname("parser::lexer::eof@debug", "s"), "parser::lexer");
        assert_eq!(classname("tests/net/dns.sh", "s"), "tests/net");
        assert_eq!(classname("smoke@linux/arm64", "s"), "s");
        assert_eq!(classname("smoke", "s"), "s");
        assert_eq!(classname("::odd", "s"), "s");
    }
}
