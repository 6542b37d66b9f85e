//! Selecting tests: a FILTER matches ids containing it, `tag:NAME` matches tags, and
//! `--variant V` runs only that variant.

use crate::support::{root, Project};

const SUITE: &str = r#"
[[test]]
name = "smoke"
command = ["true"]
tags = ["fast"]
[[test]]
name = "smoke-extra"
command = ["true"]
[[test]]
name = "other"
command = ["true"]
tags = ["fast", "net"]
[[test]]
name = "broken"
command = ["false"]
"#;

#[test]
fn name_filter_runs_only_matching_tests() {
    if !root() {
        return;
    }
    let p = Project::new(SUITE);
    let (out, events) = p.run_json(&["smoke"]);
    out.code(0); // `broken` did not run
    assert_eq!(events.test_ids(), ["smoke", "smoke-extra"]);
    assert_eq!(events.summary()["total"], 2);
    let (runs, attempts) = p.db_rows();
    assert_eq!((runs, attempts), (1, 2));
}

#[test]
fn several_filters_and_tags() {
    if !root() {
        return;
    }
    let p = Project::new(SUITE);
    let (out, events) = p.run_json(&["tag:fast"]);
    out.code(0);
    assert_eq!(events.test_ids(), ["other", "smoke"]);

    let (out, events) = p.run_json(&["tag:net", "broken"]);
    out.code(1);
    assert_eq!(events.test_ids(), ["broken", "other"]);
}

#[test]
fn variant_flag_runs_only_that_variant() {
    if !root() {
        return;
    }
    let p = Project::new(&format!(
        "{SUITE}[[variant]]\nname = \"a\"\n[[variant]]\nname = \"b\"\n[[variant]]\nname = \"c\"\n"
    ));
    let (out, events) = p.run_json(&["--variant", "b", "smoke"]);
    out.code(0);
    assert_eq!(events.test_ids(), ["smoke-extra@b", "smoke@b"]);

    let (out, events) = p.run_json(&["--variant", "a", "--variant", "c", "tag:net"]);
    out.code(0);
    assert_eq!(events.test_ids(), ["other@a", "other@c"]);
}
