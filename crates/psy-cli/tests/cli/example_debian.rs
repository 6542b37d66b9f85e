//! examples/debian end to end: its script builds minbase bookworm and trixie images from
//! Debian's mirror (once: kept in examples/debian/images, which git ignores), and its suite
//! passes in both, every attempt recording the image's digest. Needs root and the mirror; under
//! `CI` an image that cannot be built fails the test instead of skipping it.

use crate::example::copy_dir;
use crate::support::{root, Events, Project};
use std::path::Path;
use std::process::Command;

/// Tests of the suite, each run once per variant (bookworm, trixie).
const TESTS: u64 = 6;

/// Skips (or, under CI, fails) with `why`.
fn cannot(why: &str) {
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipped: {why}");
}

#[test]
fn debian_example_runs_in_its_images() {
    if !root() {
        return cannot("examples/debian needs root to build its images");
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/debian");
    let build = Command::new(example.join("build-image"))
        .output()
        .expect("running examples/debian/build-image");
    if !build.status.success() {
        return cannot(&format!(
            "examples/debian/build-image failed ({}; needs Debian's mirror): {}",
            build.status,
            String::from_utf8_lossy(&build.stderr)
        ));
    }
    let p = Project::empty();
    let copy = p.dir().join("examples/debian");
    copy_dir(&example, &copy, &["images"]);
    std::os::unix::fs::symlink(
        std::fs::canonicalize(example.join("images")).unwrap(),
        copy.join("images"),
    )
    .unwrap();

    let out = p.psy(&[
        "run",
        "-m",
        "examples/debian/psyduck.toml",
        "--message-format",
        "json",
    ]);
    out.code(0);
    let events = Events::parse(&out);
    let s = events.summary();
    assert_eq!(s["total"].as_u64().unwrap(), 2 * TESTS, "{out}");
    assert_eq!(s["passed"].as_u64().unwrap(), 2 * TESTS, "{out}");
    // Each variant ran in an image of its own, named by digest.
    let mut digests: Vec<&str> = events
        .of_type("attempt-finished")
        .map(|e| e["result"]["image"].as_str().unwrap_or("host"))
        .collect();
    digests.sort();
    digests.dedup();
    assert_eq!(digests.len(), 2, "{digests:?}");
    assert!(
        digests.iter().all(|d| d.starts_with("sha256:")),
        "{digests:?}"
    );
}
