//! A test attempt's captured output as report lines: each non-empty stream under a header,
//! whole up to the cap, else head and tail around a marker that says what was left out.

use super::color::{Painter, Style};
use crate::excerpt::{excerpt_of, Excerpt};
use crate::logs::{Blob, RunLogs};
use crate::tail::clean_line;
use crate::text::escape;
use psy_model::{AttemptResult, LogStream};

/// The output of attempt `a` of test `id`, at most `max_bytes` per stream.
pub(crate) fn attempt_output(
    p: Painter,
    logs: RunLogs<'_>,
    a: &AttemptResult,
    max_bytes: u64,
) -> Vec<String> {
    let id = escape(a.test_id.as_str());
    let mut out = Vec::new();
    for stream_of in LogStream::BOTH {
        stream(
            p,
            &format!("{}: {id} (attempt {})", stream_of.as_str(), a.attempt),
            logs.open(a, stream_of),
            max_bytes,
            &mut out,
        );
    }
    if out.is_empty() {
        out.push(p.paint(
            Style::Dim,
            &format!("--- {id} (attempt {}) printed nothing", a.attempt),
        ));
    }
    out
}

fn stream(p: Painter, title: &str, blob: Blob, max_bytes: u64, out: &mut Vec<String>) {
    let path = &blob.location;
    match excerpt_of(blob.content, max_bytes) {
        Excerpt::Empty => {}
        Excerpt::Unreadable(e) => out.push(p.paint(
            Style::Dim,
            &format!("--- {title}: cannot read {}: {e}", path.display()),
        )),
        Excerpt::Text {
            head,
            omitted,
            tail,
        } => {
            out.push(p.paint(Style::Dim, &format!("--- {title} ---")));
            out.extend(head.iter().map(|l| clean_line(l, p.enabled)));
            if let Some(omitted) = omitted {
                out.push(p.paint(
                    Style::Yellow,
                    &format!(
                        "    ... {}; all of it: {} ...",
                        omitted.describe(),
                        path.display()
                    ),
                ));
                out.extend(tail.iter().map(|l| clean_line(l, p.enabled)));
            }
        }
    }
}
