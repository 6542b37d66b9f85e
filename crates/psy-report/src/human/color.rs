//! Whether to colour, and the few ANSI styles the human report uses.

use std::ffi::OsStr;

/// The user's colour preference (`--color auto|always|never`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Always colour: an explicit request wins over `NO_COLOR`, as <https://no-color.org> asks.
    Always,
    Never,
}

impl ColorChoice {
    /// Decides for a given output; `no_color` is the value of the `NO_COLOR` variable.
    pub fn should_color(self, is_terminal: bool, no_color: Option<&OsStr>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && !matches!(no_color, Some(v) if !v.is_empty()),
        }
    }
}

/// Applies styles when colour is on, and is the identity when it is off.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Painter {
    pub(crate) enabled: bool,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Style {
    Red,
    Green,
    Yellow,
    Magenta,
    Bold,
    Dim,
}

impl Painter {
    pub(crate) fn paint(self, style: Style, text: &str) -> String {
        if !self.enabled {
            return text.to_string();
        }
        let code = match style {
            Style::Red => "1;31",
            Style::Green => "1;32",
            Style::Yellow => "1;33",
            Style::Magenta => "1;35",
            Style::Bold => "1",
            Style::Dim => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(ColorChoice::Auto.should_color(true, None));
        assert!(ColorChoice::Auto.should_color(true, empty));
        assert!(!ColorChoice::Auto.should_color(true, set));
        assert!(!ColorChoice::Auto.should_color(false, None));
        assert!(ColorChoice::Always.should_color(false, set));
        assert!(!ColorChoice::Never.should_color(true, None));
    }

    #[test]
    fn painter() {
        assert_eq!(Painter { enabled: false }.paint(Style::Red, "x"), "x");
        assert_eq!(
            Painter { enabled: true }.paint(Style::Red, "x"),
            "\x1b[1;31mx\x1b[0m"
        );
    }
}
