//! Test names no one would choose, through every command that shows them: very long ones must
//! not panic any of them.

use crate::junit::parse;
use crate::support::{root, Project};

/// 64 KiB: longer than any column width `format!` accepts.
fn long(c: char) -> String {
    std::iter::repeat_n(c, 64 * 1024).collect()
}

#[test]
fn very_long_names_go_through_every_command() {
    if !root() {
        return;
    }
    let (pass, fail) = (long('p'), long('f'));
    let p = Project::new(&format!(
        "[[test]]\nname = \"{pass}\"\ncommand = [\"true\"]\n[[test]]\nname = \"{fail}\"\ncommand = [\"sh\", \"-c\", \"echo out; exit 1\"]\n"
    ));
    let list = p.psy(&["list"]);
    list.code(0);
    assert!(list.stdout.contains(&pass), "{list}");
    let json = p.psy(&["list", "--message-format", "json"]);
    json.code(0);
    let ids: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].clone())
        .collect();
    assert_eq!(ids, [pass.as_str(), fail.as_str()]);

    let (out, events) = p.run_json(&["--junit", "junit.xml"]);
    out.code(1);
    assert_eq!(events.status(&pass), "pass");
    assert_eq!(events.status(&fail), "fail");
    assert!(
        out.stderr.contains(&fail),
        "the human report names it\n{out}"
    );
    let junit = parse(&std::fs::read_to_string(p.dir().join("junit.xml")).unwrap());
    let suite = junit.children("testsuite").next().unwrap();
    let mut names: Vec<&str> = suite.children("testcase").map(|c| c.attr("name")).collect();
    names.sort_unstable();
    assert_eq!(names, [fail.as_str(), pass.as_str()]);

    for args in [&["show"][..], &["show", "--attempts"]] {
        let out = p.psy(args);
        out.code(0);
        assert!(out.stdout.contains(&pass), "{out}");
    }
    p.psy(&["history", &pass]).code(0);
}

/// Names with escape sequences and newlines: every human display shows them escaped (no raw
/// control character reaches the terminal, one test stays one line), JSON keeps them exactly
/// and JUnit stays valid XML.
#[test]
fn control_characters_are_escaped_for_people() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "red\u001b[31mtext"
command = ["sh", "-c", "exit 1"]
[[test]]
name = "two\nlines"
command = ["true"]
[[test]]
name = "bell\u0007\ttab"
command = ["true"]
"#,
    );
    let shown = [r"red\u{1b}[31mtext", r"two\nlines", r"bell\u{7}\ttab"];
    let raw = ["red\u{1b}[31mtext", "two\nlines", "bell\u{7}\ttab"];
    let clean = |what: &str, text: &str| {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{what} prints a raw control character: {text:?}"
        );
        assert!(!text.contains("two\nlines"), "{what}: {text:?}");
    };

    let list = p.psy(&["list"]);
    list.code(0);
    clean("psy list", &list.stdout);
    for name in shown {
        assert!(list.stdout.contains(name), "{name} in {list}");
    }

    let (out, events) = p.run_json(&["--show-passing", "--junit", "junit.xml"]);
    out.code(1);
    clean("psy run", &out.stderr);
    for (name, shown) in raw.iter().zip(shown) {
        events.verdict(name); // JSON carries the exact id
        assert!(out.stderr.contains(shown), "{shown} in {out}");
    }
    let xml = std::fs::read_to_string(p.dir().join("junit.xml")).unwrap();
    clean("JUnit", &xml);
    let junit = parse(&xml);
    let suite = junit.children("testsuite").next().unwrap();
    let mut names: Vec<&str> = suite.children("testcase").map(|c| c.attr("name")).collect();
    names.sort_unstable();
    assert_eq!(names, [shown[2], shown[0], shown[1]]);

    for args in [&["show"][..], &["show", "--attempts"]] {
        let out = p.psy(args);
        out.code(0);
        clean("psy show", &out.stdout);
        assert!(out.stdout.contains(shown[0]), "{out}");
    }
    let history = p.psy(&["history", raw[1]]);
    history.code(0);
    clean("psy history", &history.stdout);
    let unknown = p.psy(&["history", "no\u{1b}[2Jsuch"]);
    unknown.code(2);
    clean("psy history's error", &unknown.stderr);
    assert_eq!(unknown.stderr.lines().count(), 1, "{unknown}");
}
