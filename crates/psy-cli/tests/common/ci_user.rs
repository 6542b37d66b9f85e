//! The ordinary user that root-run tests become to prove psy's rootless behaviour (`runuser`).
//! Shared by the test binaries that need it (`#[path]`-included).

use std::process::Command;

/// The user's name; created on first use.
pub(crate) const USER: &str = "psy-ci";

/// The uid of [`USER`], created (without a home) if missing. Needs root.
pub(crate) fn ensure_user() -> u32 {
    let exists = Command::new("id").args(["-u", USER]).output().unwrap();
    if !exists.status.success() {
        let made = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/bin/sh", USER])
            .status()
            .unwrap();
        assert!(made.success(), "useradd {USER} failed");
    }
    let out = Command::new("id").args(["-u", USER]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
