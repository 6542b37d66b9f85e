//! `{path}`, `{name}`, `{stem}` and `{file}` placeholders in command and name templates.
//!
//! Only these four words are placeholders; other braces (`${HOME}`, `awk '{print}'`) are left
//! alone so shell snippets need no escaping.

/// Every placeholder word.
pub(crate) const ALL: &[&str] = &["path", "name", "stem", "file"];

/// The first placeholder used in `template` that is not in `allowed`.
pub(crate) fn first_unavailable(template: &str, allowed: &[&str]) -> Option<&'static str> {
    ALL.iter()
        .copied()
        .find(|word| !allowed.contains(word) && template.contains(&format!("{{{word}}}")))
}

/// Replaces each `{word}` of `vars` in `template`.
pub(crate) fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (word, value) in vars {
        out = out.replace(&format!("{{{word}}}"), value);
    }
    out
}

/// Renders every element of an argv template.
pub(crate) fn render_argv(template: &[String], vars: &[(&str, &str)]) -> Vec<String> {
    template.iter().map(|arg| render(arg, vars)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_words_only() {
        let vars = [("path", "tests/a.sh"), ("stem", "a")];
        assert_eq!(
            render("run {path} as {stem} ${HOME} {x}", &vars),
            "run tests/a.sh as a ${HOME} {x}"
        );
        assert_eq!(
            first_unavailable("./run {path} {name}", &["name"]),
            Some("path")
        );
        assert_eq!(first_unavailable("awk '{print}' {name}", &["name"]), None);
    }
}
