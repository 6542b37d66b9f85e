//! The environment nextest gives a test (as `cargo nextest run` 0.9 sets it): cargo's
//! `CARGO_PKG_*` of its package (from `cargo metadata`), `CARGO_MANIFEST_DIR`,
//! `CARGO_BIN_EXE_<name>` for integration tests and benches, `CARGO_TARGET_TMPDIR`, the
//! library path, and nextest's own `NEXTEST_*`. The per-attempt ones (`NEXTEST_RUN_ID`,
//! `NEXTEST_ATTEMPT`, ...) are set by the runner's adapter hook.

use super::list::{BuildMeta, Suite};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `cargo metadata --no-deps --format-version 1`, the fields psy uses.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Metadata {
    #[serde(default)]
    pub(super) packages: Vec<Package>,
    #[serde(default)]
    pub(super) workspace_root: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Package {
    id: String,
    name: String,
    version: String,
    #[serde(default)]
    authors: Vec<String>,
    description: Option<String>,
    homepage: Option<String>,
    repository: Option<String>,
    license: Option<String>,
    license_file: Option<String>,
    rust_version: Option<String>,
}

/// What every test of one list shares.
#[derive(Debug)]
pub(super) struct Shared<'a> {
    pub(super) meta: &'a BuildMeta,
    pub(super) metadata: &'a Metadata,
    /// `LD_LIBRARY_PATH` in psy's own environment, kept after nextest's directories.
    pub(super) inherited_library_path: Option<String>,
    /// `CARGO` as nextest sets it: cargo's path.
    pub(super) cargo: Option<String>,
}

impl Shared<'_> {
    /// `CARGO_TARGET_TMPDIR`: `<target>/tmp`.
    pub(super) fn target_tmpdir(&self) -> PathBuf {
        self.meta.target_directory.join("tmp")
    }

    /// The environment of every test of `suite` (the test's own name is added by the caller).
    pub(super) fn suite_env(&self, suite: &Suite) -> BTreeMap<String, String> {
        let mut env = suite.env.clone();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_string(), v);
        };
        set("CARGO_MANIFEST_DIR", suite.cwd.display().to_string());
        if let Some(package) = self
            .metadata
            .packages
            .iter()
            .find(|p| p.id == suite.package_id)
        {
            for (k, v) in package_env(package) {
                set(k, v);
            }
        }
        if let Some(cargo) = &self.cargo {
            set("CARGO", cargo.clone());
        }
        set(
            "CARGO_TARGET_TMPDIR",
            self.target_tmpdir().display().to_string(),
        );
        if matches!(suite.kind.as_str(), "test" | "bench") {
            let binaries = self.meta.non_test_binaries.get(&suite.package_id);
            for bin in binaries
                .into_iter()
                .flatten()
                .filter(|b| b.kind == "bin-exe")
            {
                let path = self.meta.target_directory.join(&bin.path);
                let path = path.display().to_string();
                set(&format!("CARGO_BIN_EXE_{}", bin.name), path.clone());
                set(&format!("NEXTEST_BIN_EXE_{}", bin.name), path.clone());
                set(
                    &format!("NEXTEST_BIN_EXE_{}", bin.name.replace('-', "_")),
                    path,
                );
            }
        }
        set("LD_LIBRARY_PATH", self.library_path());
        set("NEXTEST", "1".into());
        set("NEXTEST_EXECUTION_MODE", "process-per-test".into());
        set("NEXTEST_RUN_MODE", "test".into());
        set("NEXTEST_TEST_PHASE", "run".into());
        set("NEXTEST_BINARY_ID", suite.binary_id.clone());
        if let Some(root) = &self.metadata.workspace_root {
            set("NEXTEST_WORKSPACE_ROOT", root.display().to_string());
        }
        env
    }

    /// The build's output directories and their `deps/`, the toolchain's libraries, then what
    /// psy inherited: where nextest lets test binaries find the dynamic libraries they link.
    fn library_path(&self) -> String {
        let target = &self.meta.target_directory;
        let mut dirs: Vec<String> = Vec::new();
        for base in &self.meta.base_output_directories {
            dirs.push(target.join(base).display().to_string());
            dirs.push(target.join(base).join("deps").display().to_string());
        }
        let libdir = self
            .meta
            .platforms
            .as_ref()
            .and_then(|p| p.host.libdir.path.as_ref());
        dirs.extend(libdir.map(|p| p.display().to_string()));
        dirs.extend(
            self.inherited_library_path
                .clone()
                .filter(|p| !p.is_empty()),
        );
        dirs.join(":")
    }
}

/// Cargo's `CARGO_PKG_*` variables of one package (empty when the manifest leaves them out).
fn package_env(p: &Package) -> Vec<(&'static str, String)> {
    let core = p.version.split(['-', '+']).next().unwrap_or("");
    let mut parts = core.split('.');
    let mut part = || parts.next().unwrap_or("").to_string();
    let (major, minor, patch) = (part(), part(), part());
    let pre = p
        .version
        .split_once('-')
        .map(|(_, pre)| pre.split('+').next().unwrap_or(pre).to_string())
        .unwrap_or_default();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        ("CARGO_PKG_NAME", p.name.clone()),
        ("CARGO_PKG_VERSION", p.version.clone()),
        ("CARGO_PKG_VERSION_MAJOR", major),
        ("CARGO_PKG_VERSION_MINOR", minor),
        ("CARGO_PKG_VERSION_PATCH", patch),
        ("CARGO_PKG_VERSION_PRE", pre),
        ("CARGO_PKG_AUTHORS", p.authors.join(":")),
        ("CARGO_PKG_DESCRIPTION", text(&p.description)),
        ("CARGO_PKG_HOMEPAGE", text(&p.homepage)),
        ("CARGO_PKG_REPOSITORY", text(&p.repository)),
        ("CARGO_PKG_LICENSE", text(&p.license)),
        ("CARGO_PKG_LICENSE_FILE", text(&p.license_file)),
        ("CARGO_PKG_RUST_VERSION", text(&p.rust_version)),
    ]
}

/// `cargo`'s path, as nextest passes it to tests: `$CARGO`, else the first `cargo` on `PATH`.
pub(super) fn cargo_path() -> Option<String> {
    if let Some(cargo) = std::env::var_os("CARGO") {
        return Some(cargo.to_string_lossy().into_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("cargo"))
        .find(|p| is_file(p))
        .map(|p| p.display().to_string())
}

fn is_file(p: &Path) -> bool {
    p.metadata().is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parts_and_optional_fields() {
        let p = Package {
            id: "x".into(),
            name: "demo".into(),
            version: "1.22.3-beta.1+build5".into(),
            authors: vec!["A <a@x>".into(), "B".into()],
            description: Some("d".into()),
            homepage: None,
            repository: None,
            license: Some("MIT".into()),
            license_file: None,
            rust_version: Some("1.80".into()),
        };
        let env: BTreeMap<_, _> = package_env(&p).into_iter().collect();
        assert_eq!(env["CARGO_PKG_VERSION_MAJOR"], "1");
        assert_eq!(env["CARGO_PKG_VERSION_MINOR"], "22");
        assert_eq!(env["CARGO_PKG_VERSION_PATCH"], "3");
        assert_eq!(env["CARGO_PKG_VERSION_PRE"], "beta.1");
        assert_eq!(env["CARGO_PKG_AUTHORS"], "A <a@x>:B");
        assert_eq!(env["CARGO_PKG_HOMEPAGE"], "");
        assert_eq!(env["CARGO_PKG_RUST_VERSION"], "1.80");
    }
}
