//! Nextest discovery against a tiny cargo project (no dependencies, builds offline).

use crate::{expand, parse_in, project};
use std::process::Command;

#[test]
fn lists_and_runs_rust_tests() {
    let p = project(&[
        ("Cargo.toml", "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n", false),
        (
            "src/lib.rs",
            "#[cfg(test)]\nmod tests {\n    #[test]\n    fn it_works() {\n        assert_eq!(std::env::var(\"TINY\").as_deref(), Ok(\"yes\"));\n    }\n\n    \
             #[test]\n    #[ignore]\n    fn slow() {}\n}\n",
            false,
        ),
        ("tests/it.rs", "#[test]\nfn integ() {\n    assert!(std::path::Path::new(\"Cargo.toml\").exists());\n}\n", false),
    ]);
    let target = p.path().join("target");
    let text = format!(
        "[[discover]]\nnextest = {{ args = [\"--offline\", \"--target-dir\", {:?}] }}\nenv = {{ TINY = \"yes\" }}\nmemory = \"64MiB\"\n",
        target.display().to_string()
    );
    let specs = expand(&parse_in(p.path(), &text).unwrap()).unwrap();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        ["tiny tests::it_works", "tiny tests::slow", "tiny::it integ"],
        "ids are `<binary id> <test name>`; ignored tests are listed (and reported skipped)"
    );

    let it_works = &specs[0];
    assert!(
        it_works.command[0].starts_with(target.to_str().unwrap()),
        "{:?}",
        it_works.command
    );
    assert_eq!(
        &it_works.command[1..],
        ["--exact", "tests::it_works", "--nocapture"]
    );
    assert_eq!(it_works.cwd, std::fs::canonicalize(p.path()).unwrap());
    assert_eq!(it_works.env["TINY"], "yes");
    assert_eq!(it_works.resources.memory_bytes, 64 << 20);
    assert_eq!(it_works.origin, "psyduck.toml:1 (discover nextest)");
    assert_eq!(it_works.group.as_deref(), Some("tiny"));
    assert_eq!(it_works.adapter, Some(psy_model::Adapter::Nextest));
    assert_eq!(it_works.env["CARGO_PKG_NAME"], "tiny");
    assert_eq!(it_works.env["CARGO_PKG_VERSION"], "0.1.0");
    assert_eq!(it_works.sandbox.writable, [target.join("tmp")]);
    assert!(target.join("tmp").is_dir(), "CARGO_TARGET_TMPDIR is made");
    assert!(
        it_works.sandbox.readonly.is_empty(),
        "a target directory in the project is visible already"
    );

    // The commands must really run the one test: as psy would, from the listed cwd and env.
    for spec in &specs {
        let out = Command::new(&spec.command[0])
            .args(&spec.command[1..])
            .current_dir(&spec.cwd)
            .envs(&spec.env)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {stdout}", spec.id);
        let ran = if spec.id.as_str().ends_with("slow") {
            "1 ignored"
        } else {
            "1 passed"
        };
        assert!(stdout.contains(ran), "{}: {stdout}", spec.id);
    }
}

#[test]
fn failing_build_is_reported() {
    let p = project(&[
        ("Cargo.toml", "[package]\nname = \"broken\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n", false),
        ("src/lib.rs", "fn oops() -> u32 { \"not a number\" }\n", false),
    ]);
    let text = format!(
        "[[discover]]\nnextest = {{ args = [\"--offline\", \"--target-dir\", {:?}] }}\n",
        p.path().join("target").display().to_string()
    );
    let err = expand(&parse_in(p.path(), &text).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("psyduck.toml:1 (discover nextest): `cargo nextest list --message-format json --offline --target-dir "),
        "{err}"
    );
    assert!(err.contains("failed (exit status: "), "{err}");
    assert!(!err.contains('\n'), "{err}");
}
