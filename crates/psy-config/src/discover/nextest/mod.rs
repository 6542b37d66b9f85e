//! `nextest = true`: list Rust tests with `cargo nextest list` and run each test binary directly,
//! as nextest does: one process per test, nextest's environment, ids that keep the binary.

mod env;
mod list;

use super::{process, DiscoverOptions, Found, RunIgnored};
use crate::error::ConfigError;
use crate::manifest::{DiscoverDef, NextestOptions};
use list::TestList;
use psy_model::Adapter;
use std::path::Path;

pub(super) fn discover(
    options: &NextestOptions,
    entry: &DiscoverDef,
    dir: &Path,
    discover: &DiscoverOptions,
) -> Result<Vec<Found>, ConfigError> {
    let mut argv: Vec<String> = ["cargo", "nextest", "list", "--message-format", "json"]
        .map(String::from)
        .to_vec();
    if options.workspace {
        argv.push("--workspace".into());
    }
    argv.extend(options.args.iter().cloned());
    let listed = process::run(&argv, dir, entry, &[])?;
    let output_error = |command: &[String], problem: String| ConfigError::DiscoverOutput {
        origin: entry.origin.clone(),
        command: command.join(" "),
        problem,
    };
    let list: TestList =
        serde_json::from_str(&listed.stdout).map_err(|e| output_error(&argv, e.to_string()))?;
    let metadata_argv: Vec<String> = ["cargo", "metadata", "--no-deps", "--format-version", "1"]
        .map(String::from)
        .to_vec();
    let metadata = process::run(&metadata_argv, dir, entry, &[])?;
    let metadata: env::Metadata = serde_json::from_str(&metadata.stdout)
        .map_err(|e| output_error(&metadata_argv, e.to_string()))?;
    let shared = env::Shared {
        meta: &list.rust_build_meta,
        metadata: &metadata,
        inherited_library_path: std::env::var("LD_LIBRARY_PATH").ok(),
        cargo: env::cargo_path(),
    };
    let mut found = tests(&list, &shared, discover.run_ignored);
    // A target directory outside the project (CARGO_TARGET_DIR=/elsewhere, or under /tmp,
    // which containers see as their own) is shown read-only at its own path.
    let target = &list.rust_build_meta.target_directory;
    if !target.starts_with(dir) {
        for test in &mut found {
            test.readonly.push(target.clone());
        }
    }
    if !found.is_empty() {
        // Tests write here (cargo's `CARGO_TARGET_TMPDIR`); it must exist to be bound writable.
        let tmpdir = shared.target_tmpdir();
        std::fs::create_dir_all(&tmpdir).map_err(|source| ConfigError::DiscoverDir {
            origin: entry.origin.clone(),
            what: "the target directory's tmp/ (CARGO_TARGET_TMPDIR)",
            path: tmpdir,
            source,
        })?;
    }
    Ok(found)
}

/// The tests `--run-ignored` selects among those matching the filters given in `args`. An
/// ignored test that is not to run keeps its plain command: libtest then reports it ignored
/// without running it, and the runner records it `skipped`.
fn tests(list: &TestList, shared: &env::Shared<'_>, run_ignored: RunIgnored) -> Vec<Found> {
    let mut found = Vec::new();
    let target = &list.rust_build_meta.target_directory;
    for suite in list.rust_suites.values() {
        let binary = target.join(&suite.binary_path);
        let suite_env = shared.suite_env(suite);
        for (test, case) in &suite.testcases {
            let selected = match run_ignored {
                RunIgnored::Default | RunIgnored::All => true,
                RunIgnored::Only => case.ignored,
            };
            if !selected || !case.matches_filters() {
                continue;
            }
            let mut command = vec![
                binary.to_string_lossy().into_owned(),
                "--exact".into(),
                test.clone(),
                "--nocapture".into(),
            ];
            if case.ignored && run_ignored != RunIgnored::Default {
                command.push("--ignored".into());
            }
            let mut env = suite_env.clone();
            env.insert("NEXTEST_TEST_NAME".into(), test.clone());
            found.push(Found {
                name: test_name(&suite.binary_id, test),
                command,
                cwd: Some(suite.cwd.clone()),
                env,
                group: Some(suite.binary_id.clone()),
                adapter: Some(Adapter::Nextest),
                writable: vec![shared.target_tmpdir()],
                readonly: Vec::new(),
                warm: None,
            });
        }
    }
    found
}

/// `<binary id> <test name>`, as nextest shows a test. Neither part has a space, so the unit
/// test `it::a` of crate `c` (`c it::a`) and the test `a` of `tests/it.rs` (`c::it a`) stay two.
fn test_name(binary_id: &str, test: &str) -> String {
    format!("{binary_id} {test}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const LIST: &str = r#"{
      "rust-build-meta": {"target-directory": "/t", "future-field": 1,
        "base-output-directories": ["debug"],
        "non-test-binaries": {"pkg-c": [{"name": "tool", "kind": "bin-exe", "path": "debug/tool"}]},
        "platforms": {"host": {"libdir": {"status": "available", "path": "/rust/lib"}}}},
      "test-count": 5,
      "rust-suites": {
        "c::bin/x": {"binary-id": "c::bin/x", "binary-path": "/t/debug/deps/x-1", "cwd": "/src/c",
          "package-id": "pkg-c", "kind": "bin",
          "testcases": {"t": {"kind": "test", "ignored": false, "filter-match": {"status": "matches"}}}},
        "c::it": {"binary-id": "c::it", "binary-path": "debug/deps/it-3", "cwd": "/src/c",
          "package-id": "pkg-c", "kind": "test",
          "testcases": {"a": {"ignored": false, "filter-match": {"status": "matches"}}}},
        "c": {"binary-id": "c", "binary-path": "debug/deps/c-2", "cwd": "/src/c", "status": "listed",
          "package-id": "pkg-c", "kind": "lib",
          "testcases": {
            "it::a": {"ignored": false, "filter-match": {"status": "matches"}},
            "tests::slow": {"ignored": true, "filter-match": {"status": "mismatch", "reason": "ignored"}},
            "tests::other": {"ignored": false, "filter-match": {"status": "mismatch", "reason": "expression"}}
          }}
      }
    }"#;

    const METADATA: &str = r#"{"packages": [{"id": "pkg-c", "name": "c", "version": "0.3.1",
        "authors": ["Ann"], "description": "demo", "license": "MIT", "license_file": null,
        "homepage": null, "repository": null, "rust_version": null, "extra": 1}],
        "workspace_root": "/src"}"#;

    fn found(run_ignored: RunIgnored) -> Vec<Found> {
        let list: TestList = serde_json::from_str(LIST).unwrap();
        let metadata: env::Metadata = serde_json::from_str(METADATA).unwrap();
        let shared = env::Shared {
            meta: &list.rust_build_meta,
            metadata: &metadata,
            inherited_library_path: Some("/usr/local/lib".into()),
            cargo: Some("/bin/cargo".into()),
        };
        tests(&list, &shared, run_ignored)
    }

    fn names(found: &[Found]) -> Vec<&str> {
        found.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn ids_keep_the_binary() {
        let found = found(RunIgnored::Default);
        assert_eq!(
            names(&found),
            ["c it::a", "c tests::slow", "c::bin/x t", "c::it a"]
        );
        assert_eq!(
            found[0].command,
            ["/t/debug/deps/c-2", "--exact", "it::a", "--nocapture"]
        );
        assert_eq!(found[2].command[0], "/t/debug/deps/x-1");
        assert_eq!(found[0].cwd.as_deref(), Some(Path::new("/src/c")));
        assert_eq!(found[3].group.as_deref(), Some("c::it"));
        assert_eq!(found[3].adapter, Some(Adapter::Nextest));
        assert_eq!(found[3].writable, [PathBuf::from("/t/tmp")]);
    }

    #[test]
    fn run_ignored_selects_and_passes_ignored() {
        // Default: listed with the plain command (libtest reports it ignored: skipped).
        let default = found(RunIgnored::Default);
        assert_eq!(
            default[1].command.last().map(String::as_str),
            Some("--nocapture")
        );
        let only = found(RunIgnored::Only);
        assert_eq!(names(&only), ["c tests::slow"]);
        assert_eq!(
            only[0].command.last().map(String::as_str),
            Some("--ignored")
        );
        let all = found(RunIgnored::All);
        assert_eq!(all.len(), 4);
        assert_eq!(all[1].command.last().map(String::as_str), Some("--ignored"));
        assert_eq!(
            all[0].command.last().map(String::as_str),
            Some("--nocapture")
        );
    }

    #[test]
    fn environment_is_nextests() {
        let found = found(RunIgnored::Default);
        let integration = &found[3].env;
        assert_eq!(integration["CARGO_PKG_NAME"], "c");
        assert_eq!(integration["CARGO_PKG_VERSION"], "0.3.1");
        assert_eq!(integration["CARGO_PKG_VERSION_MINOR"], "3");
        assert_eq!(integration["CARGO_PKG_AUTHORS"], "Ann");
        assert_eq!(integration["CARGO_MANIFEST_DIR"], "/src/c");
        assert_eq!(integration["CARGO_TARGET_TMPDIR"], "/t/tmp");
        assert_eq!(integration["CARGO_BIN_EXE_tool"], "/t/debug/tool");
        assert_eq!(integration["NEXTEST_BIN_EXE_tool"], "/t/debug/tool");
        assert_eq!(integration["CARGO"], "/bin/cargo");
        assert_eq!(integration["NEXTEST"], "1");
        assert_eq!(integration["NEXTEST_EXECUTION_MODE"], "process-per-test");
        assert_eq!(integration["NEXTEST_BINARY_ID"], "c::it");
        assert_eq!(integration["NEXTEST_TEST_NAME"], "a");
        assert_eq!(integration["NEXTEST_WORKSPACE_ROOT"], "/src");
        assert_eq!(
            integration["LD_LIBRARY_PATH"],
            "/t/debug:/t/debug/deps:/rust/lib:/usr/local/lib"
        );
        // Binaries' paths only for integration tests and benches, as cargo does.
        assert!(!found[0].env.contains_key("CARGO_BIN_EXE_tool"));
    }
}
