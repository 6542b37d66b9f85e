//! Integration tests of the image store: test images built here (busybox, files, a whiteout,
//! an opaque directory) imported from docker-archives and OCI layouts, pulled from a real
//! local registry, shared, removed and collected.

mod concurrency;
mod gc;
mod import;
mod overlay;
mod registry;
mod support;
