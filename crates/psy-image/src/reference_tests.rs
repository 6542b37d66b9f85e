//! Unit tests of [`ImageRef::parse`]: each accepted form, and the refusals.

use super::*;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn registry(value: &str) -> RegistryRef {
    match ImageRef::parse(value, Path::new("/nonexistent")) {
        Ok(ImageRef::Registry(r)) => r,
        other => panic!("{value}: {other:?}"),
    }
}

#[test]
fn registry_references() {
    let r = registry("docker.io/library/debian:bookworm");
    assert_eq!(
        (r.host.as_str(), r.repository.as_str()),
        ("docker.io", "library/debian")
    );
    assert_eq!(r.reference, Reference::Tag("bookworm".into()));
    let r = registry("localhost/app");
    assert_eq!(r.reference, Reference::Tag("latest".into()));
    let r = registry("127.0.0.1:5000/team/app:v1.2");
    assert_eq!(
        (r.host.as_str(), r.repository.as_str()),
        ("127.0.0.1:5000", "team/app")
    );
    let r = registry(&format!("[::1]:5000/app@{DIGEST}"));
    assert_eq!(r.host, "[::1]:5000");
    assert_eq!(r.reference, Reference::Digest(DIGEST.into()));
    let r = registry(&format!("ghcr.io/o/app:v1@{DIGEST}"));
    assert_eq!(r.reference, Reference::Digest(DIGEST.into()));
    assert_eq!(
        registry("docker://quay.io/a/b:c").to_string(),
        "quay.io/a/b:c"
    );
    assert_eq!(
        registry("localhost:5000/a:b").to_string(),
        "localhost:5000/a:b"
    );
}

#[test]
fn refusals_explain_the_accepted_forms() {
    for (value, needle) in [
        ("debian:bookworm", "no '/' after a host"),
        ("library/debian", "is not a registry host"),
        ("docker.io/Library/debian", "not a valid repository name"),
        ("docker.io/debian:-x", "not a valid tag"),
        ("docker.io/debian@sha256:12", "not a sha256"),
        ("./missing.tar", "no such file or directory"),
        ("", "empty"),
    ] {
        let message = ImageRef::parse(value, Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(message.contains(needle), "{value}: {message}");
        assert!(
            message.contains("an OCI layout directory"),
            "{value}: {message}"
        );
    }
}

#[test]
fn paths_are_detected_from_what_exists() {
    let base = tempfile::tempdir().unwrap();
    std::fs::write(base.path().join("image.tar"), b"").unwrap();
    std::fs::create_dir_all(base.path().join("layout")).unwrap();
    std::fs::write(base.path().join("layout/oci-layout"), b"{}").unwrap();
    std::fs::create_dir_all(base.path().join("rootfs/bin")).unwrap();
    let parse = |v: &str| ImageRef::parse(v, base.path()).unwrap();
    assert_eq!(
        parse("image.tar"),
        ImageRef::DockerArchive(base.path().join("image.tar"))
    );
    assert_eq!(
        parse("layout"),
        ImageRef::OciLayout {
            dir: base.path().join("layout"),
            reference: None
        }
    );
    assert_eq!(
        parse("layout:v2"),
        ImageRef::OciLayout {
            dir: base.path().join("layout"),
            reference: Some("v2".into())
        }
    );
    assert_eq!(
        parse("rootfs"),
        ImageRef::RootfsDir(base.path().join("rootfs"))
    );
    assert_eq!(parse("host"), ImageRef::Host);
    let absolute = base.path().join("image.tar");
    assert_eq!(
        ImageRef::parse(absolute.to_str().unwrap(), Path::new("/elsewhere")).unwrap(),
        ImageRef::DockerArchive(absolute.clone())
    );
    // The canonical name parses back to the same image.
    for value in ["image.tar", "layout", "layout:v2", "rootfs"] {
        let image = parse(value);
        assert_eq!(
            ImageRef::parse(&image.name(), Path::new("/")).unwrap(),
            image
        );
    }
}
