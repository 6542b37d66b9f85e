//! Test support shared by this crate's tests and psy-cli's: running `git` in a temporary
//! repository with a throwaway identity. Not part of the API.

use std::path::Path;
use std::process::Command;

/// `git -C dir ARGS` with a fixed identity and no signing; panics unless it succeeds.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git runs (scripts/test installs it)");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
