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
