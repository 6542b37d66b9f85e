//! `remove` and `gc`: images go, layers other images still need stay.

use psy_image::testing::{TestImage, TestLayer};
use psy_image::{ImageRef, ImageStore, NoProgress, PullOptions};
use std::time::{Duration, SystemTime};

fn images(
    dir: &std::path::Path,
) -> (
    ImageStore,
    psy_image::ResolvedImage,
    psy_image::ResolvedImage,
) {
    let base = TestLayer::new().file("base", b"base", 0o644);
    TestImage::new(vec![base.clone(), TestLayer::new().file("a", b"a", 0o644)])
        .write_docker_archive(&dir.join("a.tar"), Some("localhost/a:1"));
    TestImage::new(vec![base, TestLayer::new().file("b", b"b", 0o644)])
        .write_docker_archive(&dir.join("b.tar"), None);
    let store = ImageStore::open(dir.join("store")).unwrap();
    let resolve = |v: &str| {
        store
            .resolve(
                &ImageRef::parse(v, dir).unwrap(),
                &PullOptions::default(),
                &NoProgress,
            )
            .unwrap()
    };
    let (a, b) = (resolve("a.tar"), resolve("b.tar"));
    (store, a, b)
}

#[test]
fn remove_keeps_layers_other_images_share() {
    let dir = tempfile::tempdir().unwrap();
    let (store, a, b) = images(dir.path());
    let report = store.remove("localhost/a:1").unwrap();
    assert_eq!((report.images, report.layers), (1, 1));
    assert!(!a.layers[1].exists());
    assert!(b.layers.iter().all(|l| l.exists()));
    assert_eq!(store.list().unwrap().len(), 1);
    let message = store.remove("localhost/a:1").unwrap_err().to_string();
    assert!(message.contains("no image \"localhost/a:1\""), "{message}");
    // By a digest prefix.
    store.remove(&b.digest[..7 + 8]).unwrap();
    assert!(store.list().unwrap().is_empty());
    assert!(!b.layers[0].exists());
}

#[test]
fn gc_removes_images_not_used_since() {
    let dir = tempfile::tempdir().unwrap();
    let (store, a, b) = images(dir.path());
    let report = store
        .gc(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    assert_eq!(report.images, 0);
    // Make `a` look unused for a year (the record is the store's documented JSON).
    let record = dir
        .path()
        .join("store/images")
        .join(format!("{}.json", &a.digest[7..]));
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    json["used"] = serde_json::json!(json["used"].as_u64().unwrap() - 365 * 86400);
    std::fs::write(&record, serde_json::to_vec(&json).unwrap()).unwrap();
    let report = store
        .gc(SystemTime::now() - Duration::from_secs(30 * 86400))
        .unwrap();
    assert_eq!((report.images, report.layers), (1, 1));
    assert!(report.bytes > 0);
    assert_eq!(
        store
            .list()
            .unwrap()
            .iter()
            .map(|i| &i.digest)
            .collect::<Vec<_>>(),
        [&b.digest]
    );
    assert!(b.layers.iter().all(|l| l.exists()));
}
