//! The end of the human report: output tails of failed tests, then the totals.

use super::color::{Painter, Style};
use super::lines::Finished;
use crate::format;
use crate::tail::{clean_line, read_tail, Tail};
use crate::text::escape;
use psy_model::events::RunSummary;
use psy_model::RunId;
use std::path::Path;

/// Lines showing the end of the last attempt's stdout and stderr of one failed test.
pub(crate) fn failure_tail(p: Painter, f: &Finished, max_lines: usize) -> Vec<String> {
    let mut out = Vec::new();
    let detail = f.detail();
    let status = f.result.status.as_str().to_uppercase();
    let mut header = format!("--- {status}: {}", escape(f.result.test_id.as_str()));
    if !detail.is_empty() {
        header.push_str(&format!(" ({detail})"));
    }
    out.push(p.paint(Style::Red, &header));
    let Some(last) = &f.last else {
        out.push("(no attempt of this test finished, so there is no output to show)".to_string());
        return out;
    };
    if let Some(msg) = &last.message {
        out.push(format!("message: {}", escape(msg)));
    }
    for (name, path) in [("stdout", &last.stdout_path), ("stderr", &last.stderr_path)] {
        stream_tail(p, name, path, max_lines, &mut out);
    }
    out
}

fn stream_tail(p: Painter, name: &str, path: &Path, max_lines: usize, out: &mut Vec<String>) {
    let where_ = path.display();
    match read_tail(path, max_lines) {
        Tail::Empty => out.push(p.paint(Style::Dim, &format!("--- {name}: empty"))),
        Tail::Unreadable(e) => out.push(p.paint(
            Style::Dim,
            &format!("--- {name} ({where_}): could not be read: {e}"),
        )),
        Tail::Lines { lines, cut } => {
            let what = if cut {
                format!("last {} lines", lines.len())
            } else {
                "all".to_string()
            };
            out.push(p.paint(Style::Dim, &format!("--- {name} ({where_}), {what}:")));
            out.extend(lines.iter().map(|l| clean_line(l, p.enabled)));
        }
    }
}

/// The totals table and how to see the run again.
pub(crate) fn table(
    p: Painter,
    s: &RunSummary,
    run_id: Option<&RunId>,
    aborted: bool,
) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut title = format!(
        "Summary: {} tests in {}",
        s.total,
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
        out.push(format!("See this run again with: psy show {id}"));
    }
    out
}
