//! Integration tests of psy-config: manifests in, test specs or one-line errors out.

mod discovery;
mod errors;
mod example;
mod expand;
mod nextest;
mod nodes;
mod pytest;
mod pytest_warm;

use psy_config::{ConfigError, Manifest};
use psy_model::TestSpec;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// Held while writing scripts and while spawning discovery commands: a child forked while
/// another thread still has a script open for writing keeps that fd until exec, and running
/// the script then fails with ETXTBSY ("Text file busy").
static FILES_VS_SPAWN: Mutex<()> = Mutex::new(());

fn files_vs_spawn() -> MutexGuard<'static, ()> {
    FILES_VS_SPAWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// `manifest.expand(&[])`, safe against the ETXTBSY race above.
fn expand(manifest: &Manifest) -> Result<Vec<TestSpec>, ConfigError> {
    let _guard = files_vs_spawn();
    manifest.expand(&[])
}

/// Parses `text` as `psyduck.toml` in `dir`.
fn parse_in(dir: &Path, text: &str) -> Result<Manifest, ConfigError> {
    psy_config::parse(Path::new("psyduck.toml"), dir, text)
}

/// Parses `text` as `psyduck.toml` in a directory that does not matter.
fn parse(text: &str) -> Result<Manifest, ConfigError> {
    parse_in(Path::new("/"), text)
}

/// The one-line error of an invalid manifest.
fn error(text: &str) -> String {
    let err = parse(text)
        .expect_err("manifest should be rejected")
        .to_string();
    assert!(!err.contains('\n'), "multi-line error: {err}");
    err
}

/// Writes `files` (path, content, executable) under a fresh temp dir.
fn project(files: &[(&str, &str, bool)]) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let _guard = files_vs_spawn();
    let dir = tempfile::tempdir().unwrap();
    for (path, content, executable) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        if *executable {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    dir
}
