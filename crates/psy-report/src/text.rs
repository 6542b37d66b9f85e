//! Table columns for people that any test id fits: a column is only as wide as is readable,
//! and a longer cell overflows its own row instead of pushing every row right (or past what
//! `format!` can pad: widths above 65535 panic).

/// Columns wider than this overflow their own row instead of pushing every row right.
pub const MAX_COLUMN: usize = 80;

/// The width of a column holding `header` and `cells`, at most [`MAX_COLUMN`] characters.
pub fn column_width<'a>(header: &'a str, cells: impl IntoIterator<Item = &'a str>) -> usize {
    cells
        .into_iter()
        .chain([header])
        .map(|c| c.chars().count())
        .max()
        .unwrap_or(0)
        .min(MAX_COLUMN)
}

/// `cell` followed by spaces up to `width` characters; a longer cell is kept whole.
pub fn pad(cell: &str, width: usize) -> String {
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
