//! The one-line renderings of finished tests and retries.

use super::color::{Painter, Style};
use crate::format;
use crate::text::escape;
use psy_model::{AttemptResult, Resources, TestResult, TestStatus};

/// Labels are right-aligned to this width so test ids line up.
const LABEL_WIDTH: usize = 7;
/// Durations in brackets are right-aligned to this width (`  1.234s`).
const DURATION_WIDTH: usize = 8;

pub(crate) fn label(p: Painter, text: &str, style: Style) -> String {
    p.paint(style, &format!("{text:>LABEL_WIDTH$}"))
}

fn status_label(p: Painter, status: TestStatus) -> String {
    let (text, style) = match status {
        TestStatus::Pass => ("PASS", Style::Green),
        TestStatus::Fail => ("FAIL", Style::Red),
        TestStatus::Flaky => ("FLAKY", Style::Yellow),
        TestStatus::Timeout => ("TIMEOUT", Style::Red),
        TestStatus::Oom => ("OOM", Style::Red),
        TestStatus::Error => ("ERROR", Style::Red),
        TestStatus::Skipped => ("SKIP", Style::Yellow),
    };
    label(p, text, style)
}

/// What is known of a finished test beyond its verdict: its last attempt and that attempt's limits.
#[derive(Clone, Debug)]
pub(crate) struct Finished {
    pub(crate) result: TestResult,
    pub(crate) last: Option<AttemptResult>,
    pub(crate) resources: Option<Resources>,
}

impl Finished {
    /// The bracketed duration: the last attempt's, so a timeout shows the time it was killed at.
    fn shown_ms(&self) -> u64 {
        self.last
            .as_ref()
            .map_or(self.result.duration_ms, |a| a.duration_ms)
    }

    /// Why it ended as it did, e.g. `attempt 2/2, exit 1` or `peak 512MiB of 512MiB`.
    pub(crate) fn detail(&self) -> String {
        let r = &self.result;
        let mut parts = Vec::new();
        if r.status == TestStatus::Flaky {
            parts.push(format!("passed on attempt {}", r.attempts));
        } else if r.attempts > 1 {
            // The attempt shown, of all: with `--repeat` a failing one may not be the last.
            let shown = self.last.as_ref().map_or(r.attempts, |a| a.attempt);
            parts.push(format!("attempt {shown}/{}", r.attempts));
        }
        if let Some(last) = &self.last {
            if let Some(why) = format::attempt_end(last, self.resources.as_ref()) {
                parts.push(why);
            }
        }
        parts.join(", ")
    }

    pub(crate) fn line(&self, p: Painter) -> String {
        let mut line = format!(
            "{} [{:>DURATION_WIDTH$}] {}",
            status_label(p, self.result.status),
            format::seconds(self.shown_ms()),
            p.paint(Style::Bold, &escape(self.result.test_id.as_str())),
        );
        let detail = self.detail();
        if !detail.is_empty() {
            line.push_str(&format!(" ({detail})"));
        }
        // A passing attempt's message is only a note; a failing one's is the reason.
        if self.result.status != TestStatus::Pass && self.result.status != TestStatus::Flaky {
            if let Some(msg) = self.last.as_ref().and_then(|a| a.message.as_deref()) {
                line.push_str(&format!(": {}", escape(msg)));
            }
        }
        line
    }
}

/// `  START mytest`: a test's first attempt started (verbose).
pub(crate) fn start_line(p: Painter, test_id: &str) -> String {
    format!(
        "{} {}",
        label(p, "START", Style::Dim),
        p.paint(Style::Bold, &escape(test_id))
    )
}

/// `  RETRY mytest (attempt 2, after fail: exit 1)`; `failed` is the attempt that is being retried.
pub(crate) fn retry_line(
    p: Painter,
    test_id: &str,
    next_attempt: u32,
    failed: Option<&AttemptResult>,
    limits: Option<&Resources>,
) -> String {
    let mut line = format!(
        "{} {} (attempt {next_attempt}",
        label(p, "RETRY", Style::Magenta),
        p.paint(Style::Bold, &escape(test_id))
    );
    if let Some(a) = failed {
        line.push_str(&format!(", after {}", a.status));
        if let Some(why) = format::attempt_end(a, limits).or_else(|| a.message.clone()) {
            line.push_str(&format!(": {}", escape(&why)));
        }
    }
    line.push(')');
    line
}
