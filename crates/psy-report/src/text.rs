//! Text for people that any test id fits: control characters made visible, so a name cannot
//! move the cursor, recolour the terminal or break a line; and table columns only as wide as is
//! readable, a longer cell overflowing its own row instead of pushing every row right (or past
//! what `format!` can pad: widths above 65535 panic).

use std::borrow::Cow;

/// `s` with every control character (and every invisible character that reorders text) as a
/// visible escape: `\n`, `\t`, `\r`, otherwise `\u{1b}`. Text without any is returned as is.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A line a test or tool printed, safe to show: what a terminal would show after a carriage
/// return, without control characters or escape sequences.
pub fn output_line(line: &str) -> String {
    crate::tail::clean_line(line, false)
}

/// C0, DEL and C1 controls, and the bidirectional and zero-width marks that make text read
/// differently from what it is.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// A table's first column: `header` and every cell, escaped and padded to the column's width.
pub fn column<'a>(header: &str, cells: impl IntoIterator<Item = &'a str>) -> (String, Vec<String>) {
    let cells: Vec<Cow<'a, str>> = cells.into_iter().map(escape).collect();
    let width = column_width(header, cells.iter().map(|c| c.as_ref()));
    let padded = cells.iter().map(|c| pad(c, width)).collect();
    (pad(header, width), padded)
}

/// Columns wider than this overflow their own row instead of pushing every row right.
pub const MAX_COLUMN: usize = 80;

/// The width of a column holding `header` and `cells`, at most [`MAX_COLUMN`] characters.
fn column_width<'a>(header: &'a str, cells: impl IntoIterator<Item = &'a str>) -> usize {
    cells
        .into_iter()
        .chain([header])
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0)
        .min(MAX_COLUMN)
}

/// `cell` followed by spaces up to `width` characters; a longer cell is kept whole.
fn pad(cell: &str, width: usize) -> String {
    let len = cell.chars().count();
    let mut out = String::with_capacity(cell.len() + width.saturating_sub(len));
    out.push_str(cell);
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(len)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible() {
        assert!(matches!(escape("plain id@v"), Cow::Borrowed(_)));
        assert_eq!(escape("a\nb\tc\rd"), r"a\nb\tc\rd");
        assert_eq!(
            escape("red\u{1b}[31m\u{7}\u{0}"),
            r"red\u{1b}[31m\u{7}\u{0}"
        );
        assert_eq!(escape("x\u{202e}y\u{9b}"), r"x\u{202e}y\u{9b}");
        assert_eq!(escape("é 日本 \\n"), "é 日本 \\n");
    }

    #[test]
    fn columns_escape_and_align_their_cells() {
        let (header, cells) = column("TEST", ["a", "b\nc"]);
        assert_eq!(header, "TEST");
        assert_eq!(cells, ["a   ", r"b\nc"]);
    }

    #[test]
    fn columns_fit_their_cells_up_to_a_limit() {
        assert_eq!(column_width("TEST", ["a", "abc"]), 4);
        assert_eq!(column_width("TEST", ["é".repeat(10).as_str()]), 10);
        let huge = "x".repeat(70_000);
        assert_eq!(column_width("TEST", [huge.as_str()]), MAX_COLUMN);
        assert_eq!(pad("ab", 4), "ab  ");
        assert_eq!(pad("éé", 3), "éé ");
        assert_eq!(pad(&huge, MAX_COLUMN), huge);
    }
}
