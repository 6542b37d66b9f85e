//! docker-archives and OCI layouts imported into the store and unpacked.

use crate::support::{check_two_layers, corrupt, two_layer_image, Recorder};
use psy_image::testing::{write_oci_multi_platform, TestCompression, TestImage, TestLayer};
use psy_image::{ImageError, ImageRef, ImageStore, NoProgress, PullOptions};

fn resolve(
    store: &ImageStore,
    value: &str,
    base: &std::path::Path,
) -> Result<psy_image::ResolvedImage, ImageError> {
    let image = ImageRef::parse(value, base).unwrap();
    store.resolve(&image, &PullOptions::default(), &NoProgress)
}

#[test]
fn docker_archive_is_imported_then_reused() {
    let dir = tempfile::tempdir().unwrap();
    two_layer_image()
        .write_docker_archive(&dir.path().join("image.tar"), Some("localhost/psy-test:1"));
    let store = ImageStore::open(dir.path().join("store")).unwrap();
    let image = ImageRef::parse("image.tar", dir.path()).unwrap();
    let progress = Recorder::default();
    let first = store
        .resolve(&image, &PullOptions::default(), &progress)
        .unwrap();
    assert!(first.digest.starts_with("sha256:"));
    check_two_layers(&first.layers);
    assert_eq!(first.config.env, ["PATH=/bin", "IMAGE=test"]);
    assert_eq!(first.config.working_dir.as_deref(), Some("/work"));
    assert_eq!(first.config.user.as_deref(), Some("0:0"));
    assert_eq!(first.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
    assert_eq!(progress.counts(), (2, 0));
    let again = store
        .resolve(&image, &PullOptions::default(), &progress)
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(
        progress.counts(),
        (2, 2),
        "the second resolve unpacks nothing, reuses both"
    );
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].digest, first.digest);
    assert!(
        listed[0]
            .names
            .contains(&"localhost/psy-test:1".to_string()),
        "{:?}",
        listed[0].names
    );
    assert!(listed[0].names.contains(&image.name()));
    assert!(listed[0].size > std::fs::metadata("/bin/busybox").unwrap().len());
}

#[test]
fn oci_layouts_in_every_compression_share_unpacked_layers() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let image = two_layer_image();
    image.write_oci_layout(&layout, Some("plain"), TestCompression::None);
    image.write_oci_layout(&layout, Some("gzip"), TestCompression::Gzip);
    image.write_oci_layout(&layout, Some("zstd"), TestCompression::Zstd);
    let store = ImageStore::open(dir.path().join("store")).unwrap();
    let plain = resolve(&store, "layout:plain", dir.path()).unwrap();
    check_two_layers(&plain.layers);
    for tag in ["gzip", "zstd"] {
        let other = resolve(&store, &format!("layout:{tag}"), dir.path()).unwrap();
        assert_ne!(other.digest, plain.digest, "{tag}: another manifest");
        assert_eq!(
            other.layers, plain.layers,
            "{tag}: the same unpacked layers"
        );
    }
    let message = resolve(&store, "layout", dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("holds 3 images") && message.contains("zstd"),
        "{message}"
    );
    let message = resolve(&store, "layout:nope", dir.path())
        .unwrap_err()
        .to_string();
    assert!(message.contains("no image named \"nope\""), "{message}");
}

#[test]
fn images_sharing_a_base_layer_share_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let base = TestLayer::new().busybox();
    let a = TestImage::new(vec![base.clone(), TestLayer::new().file("a", b"a", 0o644)]);
    let b = TestImage::new(vec![base, TestLayer::new().file("b", b"b", 0o644)]);
    a.write_docker_archive(&dir.path().join("a.tar"), None);
    b.write_oci_layout(&dir.path().join("b"), None, TestCompression::Gzip);
    let store = ImageStore::open(dir.path().join("store")).unwrap();
    let a = resolve(&store, "a.tar", dir.path()).unwrap();
    let b = resolve(&store, "b", dir.path()).unwrap();
    assert_eq!(a.layers[0], b.layers[0]);
    assert_ne!(a.layers[1], b.layers[1]);
}

#[test]
fn manifest_lists_choose_this_machines_platform() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("multi");
    let mine = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let other = if mine == "amd64" { "s390x" } else { "amd64" };
    let image =
        |content: &[u8]| TestImage::new(vec![TestLayer::new().file("which", content, 0o644)]);
    write_oci_multi_platform(
        &layout,
        "multi",
        &[(other, image(b"other")), (mine, image(b"mine"))],
    );
    write_oci_multi_platform(&layout, "foreign", &[(other, image(b"other"))]);
    let store = ImageStore::open(dir.path().join("store")).unwrap();
    let resolved = resolve(&store, "multi:multi", dir.path()).unwrap();
    assert_eq!(
        std::fs::read(resolved.layers[0].join("which")).unwrap(),
        b"mine"
    );
    let message = resolve(&store, "multi:foreign", dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(&format!("no image for platform linux/{mine}")) && message.contains(other),
        "{message}"
    );
}

#[test]
fn corrupt_layers_are_refused_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let image = two_layer_image();
    // An OCI layout's blob no longer matches the manifest's digest.
    let layout = dir.path().join("layout");
    image.write_oci_layout(&layout, None, TestCompression::None);
    for blob in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let path = blob.unwrap().path();
        if std::fs::read(&path)
            .unwrap()
            .windows(11)
            .any(|w| w == b"ID=psy-top\n")
        {
            corrupt(&path, b"ID=psy-top\n", b"ID=psy-bad\n");
        }
    }
    let store = ImageStore::open(dir.path().join("store")).unwrap();
    let error = resolve(&store, "layout", dir.path()).unwrap_err();
    assert!(
        matches!(error, ImageError::DigestMismatch { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("the blob of layer"), "{error}");
    // A docker-archive's layer no longer matches the config's diff id.
    let archive = dir.path().join("image.tar");
    image.write_docker_archive(&archive, None);
    corrupt(&archive, b"ID=psy-top\n", b"ID=psy-bad\n");
    let error = resolve(&store, "image.tar", dir.path()).unwrap_err();
    assert!(error.to_string().contains("diff id"), "{error}");
    // Nothing half-unpacked is left behind or listed; the intact base layer may stay.
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("store/tmp"))
            .unwrap()
            .count(),
        0
    );
    let unpacked = std::fs::read_dir(dir.path().join("store/layers"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert!(unpacked <= 1, "only the base layer may be unpacked");
}

#[test]
fn malformed_sources_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("not-a-tar"), b"hello").unwrap();
    let store = ImageStore::open(dir.path().join("store")).unwrap();
    let message = resolve(&store, "not-a-tar", dir.path())
        .unwrap_err()
        .to_string();
    assert!(message.contains("is not a tar archive"), "{message}");
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let resolved = resolve(&store, "rootfs", dir.path()).unwrap();
    assert_eq!(resolved.layers.len(), 1);
    assert_eq!(resolved.layers[0], rootfs);
    assert_eq!(resolved.digest, format!("dir:{}", rootfs.display()));
}

#[test]
fn unprivileged_stores_mark_opaque_dirs_for_userxattr() {
    let dir = tempfile::tempdir().unwrap();
    two_layer_image().write_oci_layout(&dir.path().join("layout"), None, TestCompression::Gzip);
    let store = ImageStore::open_with(dir.path().join("store"), false).unwrap();
    let resolved = resolve(&store, "layout", dir.path()).unwrap();
    assert!(resolved.userxattr);
    let mut value = [0u8; 4];
    let n = rustix::fs::lgetxattr(
        resolved.layers[1].join("data"),
        "user.overlay.opaque",
        &mut value,
    )
    .unwrap();
    assert_eq!(&value[..n], b"y");
    assert!(!resolved.layers[1].join("data/a").exists());
}
