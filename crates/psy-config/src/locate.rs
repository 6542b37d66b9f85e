//! Turns a byte span of the manifest into `line:col` and the key path at that place
//! (`test[1].env.MODE`), so every message points at the exact key to fix.

use crate::error::{ConfigError, Location};
use std::ops::Range;
use std::path::Path;
use toml_edit::{ImDocument, Item, Table, Value};

/// The manifest's text, used to place errors.
#[derive(Debug)]
pub(crate) struct Source<'a> {
    pub(crate) path: &'a Path,
    pub(crate) text: &'a str,
}

impl Source<'_> {
    /// An error at `span` whose key path is found from the document.
    pub(crate) fn error(
        &self,
        span: Option<Range<usize>>,
        problem: impl Into<String>,
    ) -> ConfigError {
        self.error_at_key(span, None, problem)
    }

    /// An error at `span` about `child` of the key found there (e.g. a missing key of a table).
    pub(crate) fn error_at_key(
        &self,
        span: Option<Range<usize>>,
        child: Option<&str>,
        problem: impl Into<String>,
    ) -> ConfigError {
        let offset = span.map_or(0, |s| s.start.min(self.text.len()));
        let mut key = key_path(self.text, offset);
        if let Some(child) = child {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(child);
        }
        ConfigError::Invalid {
            at: self.location(offset),
            key,
            problem: problem.into(),
        }
    }

    /// Converts a `toml` deserialization error (syntax, unknown key, bad value) to ours.
    pub(crate) fn toml_error(&self, err: &toml::de::Error) -> ConfigError {
        // Syntax errors span several lines ("invalid table header\nexpected `.`, `]`").
        let problem = err
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let problem = if ImDocument::parse(self.text).is_err() {
            format!("invalid TOML: {problem}")
        } else {
            problem
        };
        self.error(err.span(), problem)
    }

    /// The 1-based line of a byte offset.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.location(offset).line
    }

    fn location(&self, offset: usize) -> Location {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            path: self.path.to_path_buf(),
            line: before.matches('\n').count() + 1,
            col: before[line_start..].chars().count() + 1,
        }
    }
}

/// The dotted key path of the innermost key or value containing `offset`, or "" when the
/// document does not parse or the offset is outside every key (blank lines, comments).
fn key_path(text: &str, offset: usize) -> String {
    let Ok(doc) = ImDocument::parse(text) else {
        return String::new();
    };
    let mut path = Vec::new();
    in_table(doc.as_table(), offset, &mut path);
    path.concat()
}

fn contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.contains(&offset) || (s.is_empty() && s.start == offset))
}

fn key_segment(path: &[String], key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!(".{key}")
    }
}

fn in_table(table: &Table, offset: usize, path: &mut Vec<String>) -> bool {
    for (name, item) in table.iter() {
        let seg = key_segment(path, name);
        path.push(seg);
        let key_span = table.get_key_value(name).and_then(|(k, _)| k.span());
        if contains(key_span, offset) || in_item(item, offset, path) {
            return true;
        }
        path.pop();
    }
    contains(table.span(), offset)
}

fn in_item(item: &Item, offset: usize, path: &mut Vec<String>) -> bool {
    match item {
        Item::None => false,
        Item::Value(value) => in_value(value, offset, path),
        Item::Table(table) => in_table(table, offset, path),
        Item::ArrayOfTables(tables) => {
            for (i, table) in tables.iter().enumerate() {
                path.push(format!("[{i}]"));
                if in_table(table, offset, path) {
                    return true;
                }
                path.pop();
            }
            false
        }
    }
}

fn in_value(value: &Value, offset: usize, path: &mut Vec<String>) -> bool {
    match value {
        Value::Array(array) => {
            for (i, element) in array.iter().enumerate() {
                path.push(format!("[{i}]"));
                if in_value(element, offset, path) {
                    return true;
                }
                path.pop();
            }
            contains(array.span(), offset)
        }
        Value::InlineTable(table) => {
            for (name, item) in table.iter() {
                let seg = key_segment(path, name);
                path.push(seg);
                let key_span = table.get_key_value(name).and_then(|(k, _)| k.span());
                if contains(key_span, offset) || in_value(item, offset, path) {
                    return true;
                }
                path.pop();
            }
            contains(table.span(), offset)
        }
        other => contains(other.span(), offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, needle: &str) -> (String, usize, usize) {
        let offset = text.find(needle).unwrap();
        let src = Source {
            path: Path::new("m.toml"),
            text,
        };
        let ConfigError::Invalid { at, key, .. } = src.error(Some(offset..offset + 1), "x") else {
            unreachable!()
        };
        (key, at.line, at.col)
    }

    #[test]
    fn finds_key_paths_and_positions() {
        let text = "[defaults]\nmemory = \"12 potatoes\"\n\n[[test]]\nname = \"a\"\n\n[[test]]\nname = \"b\"\ncommand = [\"x\",\n  \"y\"]\nenv = { MODE = \"fast\" }\n";
        assert_eq!(
            at(text, "\"12 potatoes\""),
            ("defaults.memory".into(), 2, 10)
        );
        assert_eq!(at(text, "memory"), ("defaults.memory".into(), 2, 1));
        assert_eq!(at(text, "\"b\""), ("test[1].name".into(), 8, 8));
        assert_eq!(at(text, "\"y\""), ("test[1].command[1]".into(), 10, 3));
        assert_eq!(at(text, "\"fast\""), ("test[1].env.MODE".into(), 11, 16));
        assert_eq!(at(text, "[[test]]\nname = \"b\""), ("test[1]".into(), 7, 1));
    }

    #[test]
    fn columns_count_characters() {
        let text = "# héhé\nx = \"ü\" ; bad";
        assert_eq!(at(text, "; bad").1, 2);
        assert_eq!(at(text, "; bad").2, 9);
    }
}
