//! The end of the human report: failing tests again (with their output), then the totals.

use super::color::{Painter, Style};
use super::lines::Finished;
use super::output::attempt_output;
use crate::format;
use crate::logs::RunLogs;
use crate::text::escape;
use psy_model::events::RunSummary;
use psy_model::RunId;

/// `--- FAIL: id (detail)` and, when `with_output`, the message and output of its last attempt.
pub(crate) fn test_section(
    p: Painter,
    logs: RunLogs<'_>,
    f: &Finished,
    with_output: bool,
    max: u64,
) -> Vec<String> {
    let detail = f.detail();
    let status = f.result.status.as_str().to_uppercase();
    let mut header = format!("--- {status}: {}", escape(f.result.test_id.as_str()));
    if !detail.is_empty() {
        header.push_str(&format!(" ({detail})"));
    }
    let style = if f.result.status.is_success(false) {
        Style::Green
    } else {
        Style::Red
    };
    let mut out = vec![p.paint(style, &header)];
    if !with_output {
        return out;
    }
    let Some(last) = &f.last else {
        out.push("(no attempt of this test finished, so there is no output to show)".to_string());
        return out;
    };
    if let Some(msg) = &last.message {
        out.push(format!("message: {}", escape(msg)));
    }
    out.extend(attempt_output(p, logs, last, max));
    out
}

/// `FAILED: 2 of 10 tests failed in 1.234s (run X)` or `10 tests passed in 1.234s (run X)`:
/// the whole summary of `--quiet`.
pub(crate) fn one_line(
    p: Painter,
    s: &RunSummary,
    run_id: Option<&RunId>,
    aborted: bool,
) -> String {
    let failing = s.failures(false);
    let mut line = if failing == 0 && !aborted {
        let mut l = format!("{} passed", format::count(s.total, "test"));
        if s.flaky > 0 {
            l.push_str(&format!(" ({} flaky)", s.flaky));
        }
        l
    } else {
        let what = if aborted { "aborted" } else { "FAILED" };
        format!(
            "{what}: {failing} of {} did not pass",
            format::count(s.total, "test")
        )
    };
    line.push_str(&format!(" in {}", format::duration(s.duration_ms)));
    if let Some(id) = run_id {
        line.push_str(&format!(" (run {id})"));
    }
    let style = if failing == 0 && !aborted {
        Style::Green
    } else {
        Style::Red
    };
    p.paint(style, &line)
}

/// The totals table and how to see the run again.
pub(crate) fn table(
    p: Painter,
    s: &RunSummary,
    run_id: Option<&RunId>,
    show_again: &str,
    aborted: bool,
) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut title = format!(
        "Summary: {} in {}",
        format::count(s.total, "test"),
        format::duration(s.duration_ms)
    );
    if let Some(id) = run_id {
        title.push_str(&format!(" (run {id})"));
    }
    out.push(p.paint(Style::Bold, &title));
    if aborted {
        out.push(p.paint(Style::Yellow, "  the run was aborted before it finished"));
    }
    let rows = [
        ("passed", s.passed, Style::Green),
        ("failed", s.failed, Style::Red),
        ("flaky", s.flaky, Style::Yellow),
        ("skipped", s.skipped, Style::Yellow),
        ("timed out", s.timed_out, Style::Red),
        ("oom", s.oom, Style::Red),
        ("errors", s.errors, Style::Red),
        ("not run", s.not_run, Style::Yellow),
    ];
    for (name, n, style) in rows {
        let row = format!("  {name:<10}{n:>6}");
        out.push(if n > 0 { p.paint(style, &row) } else { row });
    }
    if let Some(id) = run_id {
        out.push(format!(
            "See this run again with: {}",
            show_again.replace("{run}", id.as_str())
        ));
    }
    out
}
