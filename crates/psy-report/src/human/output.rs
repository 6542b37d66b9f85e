//! A test attempt's captured output as report lines: each non-empty stream under a header,
//! whole up to the cap, else head and tail around a marker that says what was left out.

use super::color::{Painter, Style};
use crate::excerpt::{read_excerpt, Excerpt};
use crate::tail::clean_line;
use crate::text::escape;
use psy_model::AttemptResult;
use std::path::Path;

/// The output of attempt `a` of test `id`, at most `max_bytes` per stream.
pub(crate) fn attempt_output(p: Painter, a: &AttemptResult, max_bytes: u64) -> Vec<String> {
    let id = escape(a.test_id.as_str());
    let mut out = Vec::new();
    for (name, path) in [("stdout", &a.stdout_path), ("stderr", &a.stderr_path)] {
        stream(
            p,
            &format!("{name}: {id} (attempt {})", a.attempt),
            path,
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

fn stream(p: Painter, title: &str, path: &Path, max_bytes: u64, out: &mut Vec<String>) {
    match read_excerpt(path, max_bytes) {
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
