//! What the store's tests share: a two-layer test image and a progress recorder.

use psy_image::testing::{TestImage, TestLayer};
use psy_image::Progress;
use std::path::Path;
use std::sync::Mutex;

/// A base layer (busybox, files) and a top layer that deletes, hides and replaces some.
pub(crate) fn two_layer_image() -> TestImage {
    let base = TestLayer::new()
        .busybox()
        .dir("etc", 0o755)
        .file("etc/os-release", b"ID=psy-base\n", 0o644)
        .file("etc/gone", b"deleted above\n", 0o644)
        .dir("data", 0o755)
        .file("data/a", b"a\n", 0o644)
        .file("data/b", b"b\n", 0o644);
    let top = TestLayer::new()
        .dir("etc", 0o755)
        .file("etc/os-release", b"ID=psy-top\n", 0o644)
        .whiteout("etc/gone")
        .dir("data", 0o755)
        .opaque("data")
        .file("data/c", b"c\n", 0o600)
        .hardlink("data/c-link", "data/c")
        .dir("work", 0o755);
    TestImage::new(vec![base, top])
}

/// Records which layers were unpacked and which reused.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub(crate) unpacked: Mutex<Vec<String>>,
    pub(crate) reused: Mutex<Vec<String>>,
}

impl Progress for Recorder {
    fn layer_finished(&self, layer: &str, reused: bool) {
        let list = if reused { &self.reused } else { &self.unpacked };
        list.lock().unwrap().push(layer.to_string());
    }
}

impl Recorder {
    pub(crate) fn counts(&self) -> (usize, usize) {
        (
            self.unpacked.lock().unwrap().len(),
            self.reused.lock().unwrap().len(),
        )
    }
}

/// Checks the unpacked layers of [`two_layer_image`].
pub(crate) fn check_two_layers(layers: &[std::path::PathBuf]) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    assert_eq!(layers.len(), 2, "{layers:?}");
    let (base, top) = (&layers[0], &layers[1]);
    let busybox = std::fs::symlink_metadata(base.join("bin/busybox")).unwrap();
    assert_eq!(
        busybox.len(),
        std::fs::metadata("/bin/busybox").unwrap().len()
    );
    assert_eq!(busybox.mode() & 0o777, 0o755);
    assert_eq!(
        std::fs::read_link(base.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        std::fs::read(base.join("etc/os-release")).unwrap(),
        b"ID=psy-base\n"
    );
    assert_eq!(
        std::fs::read(top.join("etc/os-release")).unwrap(),
        b"ID=psy-top\n"
    );
    let gone = std::fs::symlink_metadata(top.join("etc/gone")).unwrap();
    assert!(gone.file_type().is_char_device() && gone.rdev() == 0);
    assert!(!top.join("data/a").exists());
    assert_eq!(
        std::fs::symlink_metadata(top.join("data/c"))
            .unwrap()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::symlink_metadata(top.join("data/c-link"))
            .unwrap()
            .nlink(),
        2
    );
    let opaque_attr = if rustix::process::geteuid().is_root() {
        "trusted.overlay.opaque"
    } else {
        "user.overlay.opaque"
    };
    let mut value = [0u8; 4];
    let n =
        rustix::fs::lgetxattr(top.join("data"), opaque_attr, &mut value).expect("the opaque xattr");
    assert_eq!(&value[..n], b"y");
}

/// Replaces the only occurrence of `from` in the file at `path` with `to` (same length).
pub(crate) fn corrupt(path: &Path, from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the bytes to corrupt");
    bytes[at..at + to.len()].copy_from_slice(to);
    std::fs::write(path, bytes).unwrap();
}
