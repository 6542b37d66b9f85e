//! The unpacked layers stacked by the real kernel: an overlayfs mount (in a mount namespace of
//! its own, through util-linux's `unshare`) shows the top layer's files, hides whited-out ones
//! and what opaque directories cover. Needs root; skipped otherwise.

use crate::support::two_layer_image;
use psy_image::testing::TestCompression;
use psy_image::{ImageRef, ImageStore, NoProgress, PullOptions};
use std::process::Command;

/// What `script` prints with the image's layers mounted at `$ROOT` (`extra` mount options).
fn in_overlay(privileged: bool, unshare: &[&str], script: &str) -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: mounting overlayfs needs root");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    two_layer_image().write_oci_layout(&dir.path().join("layout"), None, TestCompression::Gzip);
    let store = ImageStore::open_with(dir.path().join("store"), privileged).unwrap();
    let image = ImageRef::parse("layout", dir.path()).unwrap();
    let resolved = store
        .resolve(&image, &PullOptions::default(), &NoProgress)
        .unwrap();
    let lower: Vec<String> = resolved
        .layers
        .iter()
        .rev()
        .map(|l| l.display().to_string())
        .collect();
    let mut options = format!("lowerdir={}", lower.join(":"));
    if resolved.userxattr {
        options.push_str(",userxattr");
    }
    let mountpoint = dir.path().join("mnt");
    std::fs::create_dir(&mountpoint).unwrap();
    let output = Command::new("unshare")
        .args(unshare)
        .args([
            "sh",
            "-c",
            &format!("mount -t overlay overlay -o {options} \"$ROOT\" && {script}"),
        ])
        .env("ROOT", &mountpoint)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).unwrap())
}

const LOOK: &str = r#"cat "$ROOT/etc/os-release"; ls "$ROOT/etc" "$ROOT/data"; test -x "$ROOT/bin/busybox" && echo busybox"#;

fn check(listing: &str) {
    assert!(listing.contains("ID=psy-top"), "{listing}");
    assert!(
        !listing.contains("gone"),
        "the whiteout hides etc/gone: {listing}"
    );
    assert!(
        !listing.contains("\na\n") && !listing.contains("\nb\n"),
        "the opaque data/ hides a and b: {listing}"
    );
    assert!(
        listing.contains("c-link") && listing.contains("busybox"),
        "{listing}"
    );
}

#[test]
fn overlay_of_root_unpacked_layers() {
    if let Some(listing) = in_overlay(true, &["--mount"], LOOK) {
        check(&listing);
    }
}

#[test]
fn overlay_of_user_unpacked_layers_with_userxattr() {
    if let Some(listing) = in_overlay(false, &["--user", "--map-root-user", "--mount"], LOOK) {
        check(&listing);
    }
}
