//! Unit tests of unpacking: whiteouts and opaque directories for overlayfs, metadata kept,
//! and every way out of the layer directory refused.

use super::*;
use crate::testing::{TestLayer, MTIME};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

const NAME: LayerName<'static> = LayerName {
    image: "test",
    layer: "sha256:test",
};

fn unpack_as(
    layer: &TestLayer,
    privileged: bool,
) -> (tempfile::TempDir, Result<LayerStats, crate::ImageError>) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    let result = unpack(&layer.tar()[..], &root, UnpackMode { privileged }, NAME);
    (dir, result)
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = [0u8; 16];
    rustix::fs::lgetxattr(path, name, &mut buf)
        .ok()
        .map(|n| buf[..n].to_vec())
}

fn root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn whiteouts_become_overlayfs_whiteouts() {
    let layer = TestLayer::new()
        .dir("etc", 0o755)
        .whiteout("etc/gone")
        .whiteout("top")
        .opaque("etc");
    let (dir, result) = unpack_as(&layer, root());
    result.unwrap();
    for rel in ["root/etc/gone", "root/top"] {
        let meta = fs::symlink_metadata(dir.path().join(rel)).unwrap();
        assert!(meta.file_type().is_char_device(), "{rel}");
        assert_eq!(meta.rdev(), 0, "{rel}");
    }
    assert!(!dir.path().join("root/etc/.wh..wh..opq").exists());
    assert!(!dir.path().join("root/etc/.wh.gone").exists());
    if root() {
        assert_eq!(
            xattr(&dir.path().join("root/etc"), "trusted.overlay.opaque").as_deref(),
            Some(&b"y"[..])
        );
    }
}

#[test]
fn without_root_opaque_dirs_use_user_xattrs() {
    let layer = TestLayer::new()
        .dir("data", 0o755)
        .file("data/x", b"x", 0o644)
        .opaque("data")
        .char_device("dev/null", 1, 3);
    let (dir, result) = unpack_as(&layer, false);
    let stats = result.unwrap();
    assert!(stats.userxattr);
    assert_eq!(stats.skipped_devices, 1);
    assert_eq!(
        xattr(&dir.path().join("root/data"), "user.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!dir.path().join("root/dev/null").exists());
    assert_eq!(fs::read(dir.path().join("root/data/x")).unwrap(), b"x");
}

#[test]
fn keeps_modes_links_and_mtimes() {
    let layer = TestLayer::new()
        .dir("bin", 0o755)
        .file("bin/tool", b"#!/bin/sh\n", 0o4755)
        .file("ro/file", b"data", 0o444)
        .dir("ro", 0o555)
        .symlink("bin/alias", "/bin/tool")
        .hardlink("bin/tool2", "bin/tool")
        .char_device("dev/null", 1, 3);
    let privileged = root();
    let (dir, result) = unpack_as(&layer, privileged);
    let stats = result.unwrap();
    let r = dir.path().join("root");
    let tool = fs::symlink_metadata(r.join("bin/tool")).unwrap();
    assert_eq!(tool.mode() & 0o7777, 0o4755);
    assert_eq!(tool.mtime(), MTIME as i64);
    assert_eq!(tool.nlink(), 2);
    assert_eq!(
        fs::symlink_metadata(r.join("bin/tool2")).unwrap().ino(),
        tool.ino()
    );
    assert_eq!(
        fs::read_link(r.join("bin/alias")).unwrap(),
        Path::new("/bin/tool")
    );
    assert_eq!(
        fs::symlink_metadata(r.join("bin/alias")).unwrap().mtime(),
        MTIME as i64
    );
    let ro = fs::symlink_metadata(r.join("ro")).unwrap();
    assert_eq!((ro.mode() & 0o7777, ro.mtime()), (0o555, MTIME as i64));
    assert_eq!(
        fs::symlink_metadata(r.join("bin")).unwrap().mtime(),
        MTIME as i64
    );
    assert_eq!(stats.bytes, 14);
    if privileged {
        let null = fs::symlink_metadata(r.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
        assert_eq!((tool.uid(), tool.gid()), (0, 0));
    }
    // A read-only directory must not keep the test's temp dir from being removed.
    let _ = fs::set_permissions(r.join("ro"), fs::Permissions::from_mode(0o755));
}

#[test]
fn refuses_paths_out_of_the_layer() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap();
    let cases: Vec<(TestLayer, &str)> = vec![
        (
            TestLayer::new().raw_file(b"../escape", b"x"),
            "contains '..'",
        ),
        (
            TestLayer::new().raw_file(b"a/../../escape", b"x"),
            "contains '..'",
        ),
        (
            TestLayer::new()
                .symlink("evil", target)
                .file("evil/pwned", b"x", 0o644),
            "is a symlink",
        ),
        (
            TestLayer::new().dir("d", 0o755).symlink("d/up", "..").file(
                "d/up/up/pwned",
                b"x",
                0o644,
            ),
            "is a symlink",
        ),
        (
            TestLayer::new()
                .symlink("evil", target)
                .dir("evil/sub", 0o755),
            "is a symlink",
        ),
        (
            TestLayer::new().symlink("evil", target).whiteout("evil/x"),
            "is a symlink",
        ),
        (
            TestLayer::new().hardlink("passwd", "/etc/passwd"),
            "not in this layer",
        ),
        (
            TestLayer::new()
                .file("f", b"x", 0o644)
                .file("f/g", b"x", 0o644),
            "not a directory",
        ),
    ];
    for (layer, reason) in cases {
        let (_dir, result) = unpack_as(&layer, true);
        let message = result.unwrap_err().to_string();
        assert!(
            message.contains(reason) && message.contains("refusing entry"),
            "{message}"
        );
        assert_eq!(
            fs::read_dir(outside.path()).unwrap().count(),
            0,
            "{message}"
        );
    }
    // An absolute path is taken as relative to the layer, as tar does.
    let (dir, result) = unpack_as(&TestLayer::new().raw_file(b"/abs/file", b"x"), true);
    result.unwrap();
    assert!(dir.path().join("root/abs/file").is_file());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let layer = TestLayer::new()
        .file("x", b"first", 0o644)
        .file("x", b"second", 0o600)
        .dir("d", 0o755)
        .file("d/inner", b"", 0o644)
        .symlink("d", "x");
    let (dir, result) = unpack_as(&layer, root());
    result.unwrap();
    assert_eq!(fs::read(dir.path().join("root/x")).unwrap(), b"second");
    assert_eq!(
        fs::read_link(dir.path().join("root/d")).unwrap(),
        Path::new("x")
    );
}
