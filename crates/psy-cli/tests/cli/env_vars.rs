//! The `PSY_*` variables and the container every attempt sees: run id, test id, attempt,
//! variant, a fresh writable scratch directory, a read-only project, a private /tmp and no
//! network but loopback.

use crate::support::{root, value, Project};

/// Prints what the attempt sees as `key=value` lines; fails its first attempt after writing
/// to its scratch directory, so the retry can show that the scratch directory is fresh.
const SCRIPT: &str = r#"
echo "run=$PSY_RUN_ID"
echo "test=$PSY_TEST_ID"
echo "attempt=$PSY_ATTEMPT"
echo "variant=${PSY_VARIANT-unset}"
echo "scratch=$PSY_SCRATCH"
echo "scratch_entries=$(ls -A "$PSY_SCRATCH" | wc -l | tr -d ' ')"
echo hello > "$PSY_SCRATCH/f" && echo "scratch_write=$(cat "$PSY_SCRATCH/f")"
echo "tmp_write=$(echo ok > /tmp/t && cat /tmp/t)"
if touch "$PWD/written-by-test" 2>/dev/null; then echo project=writable; else echo project=read-only; fi
echo "netdevs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "x=${X-unset}"
echo "args=$*"
[ "$PSY_ATTEMPT" -ge 2 ]
"#;

#[test]
fn psy_variables_without_variants() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "vars"
command = ["sh", "vars.sh"]
retries = 1
env = { X = "from-test" }
"#,
    );
    p.file("vars.sh", SCRIPT);
    let (out, events) = p.run_json(&[]);
    out.code(0);
    assert_eq!(events.status("vars"), "flaky");

    let first = events.printed("vars", 1);
    let second = events.printed("vars", 2);
    for (attempt, seen) in [("1", &first), ("2", &second)] {
        assert_eq!(value(seen, "run"), events.run_id());
        assert_eq!(value(seen, "test"), "vars");
        assert_eq!(value(seen, "attempt"), attempt);
        assert_eq!(
            value(seen, "variant"),
            "",
            "set, and empty without variants"
        );
        assert!(value(seen, "scratch").starts_with('/'), "{seen:?}");
        // Attempt 1 wrote a file there: attempt 2 must still start empty.
        assert_eq!(value(seen, "scratch_entries"), "0", "{seen:?}");
        assert_eq!(value(seen, "scratch_write"), "hello");
        assert_eq!(value(seen, "tmp_write"), "ok");
        assert_eq!(value(seen, "project"), "read-only");
        assert_eq!(value(seen, "netdevs"), "lo ", "no network but loopback");
        assert_eq!(value(seen, "x"), "from-test");
        assert_eq!(value(seen, "args"), "");
    }
    // The scratch directory may be the same recycled slot; what matters is that it starts empty.
    let _ = (&first, &second);
    assert!(!p.dir().join("written-by-test").exists());
}

#[test]
fn psy_variables_with_variants() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "vars"
command = ["sh", "vars.sh"]
env = { X = "from-test" }

[[variant]]
name = "plain"
args = ["--from-plain"]

[[variant]]
name = "over"
env = { X = "from-variant" }
"#,
    );
    p.file("vars.sh", SCRIPT);
    // Both fail their only attempt (the script passes from attempt 2): exit 1.
    let (out, events) = p.run_json(&[]);
    out.code(1);
    assert_eq!(events.test_ids(), ["vars@over", "vars@plain"]);

    let plain = events.printed("vars@plain", 1);
    assert_eq!(value(&plain, "test"), "vars@plain");
    assert_eq!(value(&plain, "variant"), "plain");
    assert_eq!(value(&plain, "attempt"), "1");
    assert_eq!(value(&plain, "run"), events.run_id());
    assert_eq!(value(&plain, "x"), "from-test");
    assert_eq!(value(&plain, "args"), "--from-plain");

    let over = events.printed("vars@over", 1);
    assert_eq!(value(&over, "test"), "vars@over");
    assert_eq!(value(&over, "variant"), "over");
    assert_eq!(value(&over, "x"), "from-variant", "the variant's env wins");
    assert_eq!(value(&over, "args"), "");
    assert_ne!(value(&plain, "scratch"), value(&over, "scratch"));
}

/// An argv and environment of several hundred KiB (over what one launcher message may carry;
/// each string under the kernel's 128 KiB per-string limit) reach the test whole.
#[test]
fn large_argv_and_environment_reach_the_test() {
    if !root() {
        return;
    }
    let big = "x".repeat(100 << 10);
    let p = Project::new(&format!(
        r#"
[[test]]
name = "big"
command = ["sh", "-c", "test ${{#A}}${{#B}}${{#C}} = {len}{len}{len} && test ${{#1}}${{#2}} = {len}{len} && echo ok", "sh", "{big}", "{big}"]
env = {{ A = "{big}", B = "{big}", C = "{big}" }}
"#,
        len = big.len(),
    ));
    let (out, events) = p.run_json(&[]);
    out.code(0);
    assert_eq!(events.status("big"), "pass");
}

/// `writable = [...]` directories can be written at their own path (as owned by root on the
/// host); the rest of the project stays read-only; a missing one fails the run up front.
#[test]
fn writable_directories_and_nothing_else() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "writes"
writable = ["cache"]
command = ["sh", "-c", "echo hi > cache/f && ! touch elsewhere 2>/dev/null"]
"#,
    );
    std::fs::create_dir(p.dir().join("cache")).unwrap();
    let (out, events) = p.run_json(&[]);
    out.code(0);
    assert_eq!(events.status("writes"), "pass");
    let written = p.dir().join("cache/f");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "hi\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&written).unwrap().uid(),
        0,
        "owned by root on the host"
    );
    assert!(!p.dir().join("elsewhere").exists());

    std::fs::remove_dir_all(p.dir().join("cache")).unwrap();
    let out = p.psy(&["run"]);
    out.code(2);
    assert!(
        out.stderr.contains("writable") && out.stderr.contains("not an existing directory"),
        "{}",
        out.stderr
    );
}
