//! `nextest = true`: list Rust tests with `cargo nextest list` and run each test binary directly.

use super::{process, Found};
use crate::error::ConfigError;
use crate::manifest::{DiscoverDef, NextestOptions};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The parts of `cargo nextest list --message-format json` we use; other fields are ignored
/// so newer nextest versions keep working.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct TestList {
    rust_build_meta: BuildMeta,
    #[serde(default)]
    rust_suites: BTreeMap<String, Suite>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct BuildMeta {
    target_directory: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Suite {
    binary_id: String,
    binary_path: PathBuf,
    cwd: PathBuf,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    testcases: BTreeMap<String, TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct TestCase {
    #[serde(default)]
    ignored: bool,
    filter_match: Option<FilterMatch>,
}

#[derive(Debug, Deserialize)]
struct FilterMatch {
    status: String,
}

pub(super) fn discover(
    options: &NextestOptions,
    entry: &DiscoverDef,
    dir: &Path,
) -> Result<Vec<Found>, ConfigError> {
    let mut argv: Vec<String> = ["cargo", "nextest", "list", "--message-format", "json"]
        .map(String::from)
        .to_vec();
    if options.workspace {
        argv.push("--workspace".into());
    }
    argv.extend(options.args.iter().cloned());
    let listed = process::run(&argv, dir, entry, &[])?;
    parse(&listed.stdout).map_err(|e| ConfigError::DiscoverOutput {
        origin: entry.origin.clone(),
        command: argv.join(" "),
        problem: e.to_string(),
    })
}

/// Tests nextest would run by default: not ignored, matching the filters given in `args`.
fn parse(json: &str) -> Result<Vec<Found>, serde_json::Error> {
    let list: TestList = serde_json::from_str(json)?;
    let mut found = Vec::new();
    for suite in list.rust_suites.into_values() {
        let binary = list
            .rust_build_meta
            .target_directory
            .join(&suite.binary_path);
        let mut env = suite.env.clone();
        // cargo test and nextest both set it at run time; tests use it to find fixtures.
        env.entry("CARGO_MANIFEST_DIR".into())
            .or_insert_with(|| suite.cwd.to_string_lossy().into_owned());
        for (test, case) in &suite.testcases {
            let matches = !matches!(&case.filter_match, Some(m) if m.status != "matches");
            if case.ignored || !matches {
                continue;
            }
            found.push(Found {
                // "<binary-id> <test>" is nextest's display; "::" reads better in filters.
                name: format!("{}::{test}", suite.binary_id),
                command: vec![
                    binary.to_string_lossy().into_owned(),
                    "--exact".into(),
                    test.clone(),
                    "--nocapture".into(),
                ],
                cwd: Some(suite.cwd.clone()),
                env: env.clone(),
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_list_output() {
        let json = r#"{
          "rust-build-meta": {"target-directory": "/t", "future-field": 1},
          "test-count": 3,
          "rust-suites": {
            "c::bin/x": {"binary-id": "c::bin/x", "binary-path": "/t/debug/deps/x-1", "cwd": "/src/c",
              "testcases": {"t": {"kind": "test", "ignored": false, "filter-match": {"status": "matches"}}}},
            "c": {"binary-id": "c", "binary-path": "debug/deps/c-2", "cwd": "/src/c", "status": "listed",
              "testcases": {
                "tests::works": {"ignored": false, "filter-match": {"status": "matches"}},
                "tests::slow": {"ignored": true, "filter-match": {"status": "matches"}},
                "tests::other": {"ignored": false, "filter-match": {"status": "mismatch", "reason": "expression"}}
              }}
          }
        }"#;
        let found = parse(json).unwrap();
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["c::tests::works", "c::bin/x::t"]);
        assert_eq!(
            found[0].command,
            [
                "/t/debug/deps/c-2",
                "--exact",
                "tests::works",
                "--nocapture"
            ]
        );
        assert_eq!(found[1].command[0], "/t/debug/deps/x-1");
        assert_eq!(found[0].cwd.as_deref(), Some(Path::new("/src/c")));
        assert_eq!(found[0].env["CARGO_MANIFEST_DIR"], "/src/c");
    }
}
