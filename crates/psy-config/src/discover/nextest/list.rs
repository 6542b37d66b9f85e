//! The parts of `cargo nextest list --message-format json` psy uses; other fields are ignored
//! so newer nextest versions keep working.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct TestList {
    pub(super) rust_build_meta: BuildMeta,
    #[serde(default)]
    pub(super) rust_suites: BTreeMap<String, Suite>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct BuildMeta {
    pub(super) target_directory: PathBuf,
    /// `debug`, `release`, ...: below the target directory, with `deps/` beside.
    #[serde(default)]
    pub(super) base_output_directories: Vec<PathBuf>,
    /// Binaries (`bin-exe`) per package id, relative to the target directory.
    #[serde(default)]
    pub(super) non_test_binaries: BTreeMap<String, Vec<NonTestBinary>>,
    #[serde(default)]
    pub(super) platforms: Option<Platforms>,
}

#[derive(Debug, Deserialize)]
pub(super) struct NonTestBinary {
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) path: PathBuf,
}

#[derive(Debug, Deserialize)]
pub(super) struct Platforms {
    pub(super) host: HostPlatform,
}

#[derive(Debug, Deserialize)]
pub(super) struct HostPlatform {
    pub(super) libdir: Libdir,
}

/// The toolchain's library directory (`status = "available"` with a path).
#[derive(Debug, Deserialize)]
pub(super) struct Libdir {
    pub(super) path: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct Suite {
    pub(super) binary_id: String,
    pub(super) binary_path: PathBuf,
    /// Matches `cargo metadata`'s package `id`.
    #[serde(default)]
    pub(super) package_id: String,
    /// `lib`, `test`, `bench`, `bin`, `example`, `proc-macro`.
    #[serde(default)]
    pub(super) kind: String,
    pub(super) cwd: PathBuf,
    /// Older nextest versions listed a suite's environment here.
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) testcases: BTreeMap<String, TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct TestCase {
    #[serde(default)]
    pub(super) ignored: bool,
    pub(super) filter_match: Option<FilterMatch>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FilterMatch {
    pub(super) status: String,
    #[serde(default)]
    pub(super) reason: Option<String>,
}

impl TestCase {
    /// Whether the filters given in `args` select it (nextest lists an ignored test as a
    /// mismatch for being ignored; that is `--run-ignored`'s business, not the filters').
    pub(super) fn matches_filters(&self) -> bool {
        match &self.filter_match {
            None => true,
            Some(m) => m.status == "matches" || m.reason.as_deref() == Some("ignored"),
        }
    }
}
