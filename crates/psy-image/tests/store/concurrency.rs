//! Two resolvers of one image at once, as two psy processes would be: one unpacks each
//! layer, the other waits and reuses it.

use crate::support::{check_two_layers, two_layer_image, Recorder};
use psy_image::{ImageRef, ImageStore, PullOptions};

#[test]
fn two_resolvers_of_one_image_unpack_each_layer_once() {
    let dir = tempfile::tempdir().unwrap();
    two_layer_image().write_docker_archive(&dir.path().join("image.tar"), None);
    let image = ImageRef::parse("image.tar", dir.path()).unwrap();
    let progress = Recorder::default();
    let barrier = std::sync::Barrier::new(4);
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    // Each thread its own store handle: separate lock file descriptions, as
                    // separate processes have.
                    let store = ImageStore::open(dir.path().join("store")).unwrap();
                    barrier.wait();
                    store
                        .resolve(&image, &PullOptions::default(), &progress)
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for result in &results {
        assert_eq!(result, &results[0]);
    }
    check_two_layers(&results[0].layers);
    let (unpacked, _) = progress.counts();
    assert_eq!(unpacked, 2, "each layer unpacked once: {progress:?}");
}
