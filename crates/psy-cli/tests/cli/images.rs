//! `psy image ls|pull|import|rm` against a store in the test's directory, with test images
//! built by psy-image's `testing` module, and `psy gc` collecting images unused for 30 days.

use crate::support::{Out, Project};
use psy_image::testing::{TestCompression, TestImage, TestLayer, TestRegistry};

fn image() -> TestImage {
    let base = TestLayer::new()
        .busybox()
        .file("etc/os-release", b"ID=psy\n", 0o644);
    let top = TestLayer::new()
        .whiteout("etc/os-release")
        .file("hello", b"hi\n", 0o644);
    TestImage::new(vec![base, top])
}

/// `psy image ARGS --store <project>/store`.
fn psy_image(p: &Project, args: &[&str]) -> Out {
    let store = p.dir().join("store");
    let mut all = vec!["image"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--store", store.to_str().unwrap()]);
    p.psy(&all)
}

#[test]
fn image_import_ls_and_rm() {
    let p = Project::empty();
    image().write_docker_archive(&p.dir().join("app.tar"), Some("localhost/app:1"));
    image().write_oci_layout(&p.dir().join("layout"), Some("v1"), TestCompression::Zstd);
    let out = psy_image(&p, &["import", "app.tar"]);
    out.code(0);
    let digest = out.stdout.trim().to_string();
    assert!(digest.starts_with("sha256:"), "{out}");
    assert_eq!(out.stderr.matches(": unpacked").count(), 2, "{out}");
    let out = psy_image(&p, &["import", "layout:v1"]);
    out.code(0);
    assert_eq!(
        out.stderr.matches("already unpacked").count(),
        2,
        "the layout shares the archive's layers\n{out}"
    );
    let out = psy_image(&p, &["ls"]);
    out.code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("DIGEST") && lines[0].contains("USED"),
        "{out}"
    );
    let app = lines
        .iter()
        .find(|l| l.starts_with("localhost/app:1"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        app.contains(&digest[..19]) && app.contains("just now"),
        "{out}"
    );
    assert!(
        out.stdout.contains("oci:") && out.stdout.contains("layout:v1"),
        "{out}"
    );
    psy_image(&p, &["rm", "localhost/app:1"]).code(0);
    let out = psy_image(&p, &["rm", "localhost/app:1"]);
    out.code(2);
    assert!(out.stderr.contains("no image \"localhost/app:1\""), "{out}");
    let layout_name = format!("oci:{}:v1", p.dir().join("layout").display());
    let out = psy_image(&p, &["rm", &layout_name]);
    out.code(0);
    assert!(out.stderr.contains("2 unpacked layers"), "{out}");
    let out = psy_image(&p, &["ls"]);
    out.code(0);
    assert!(
        out.stdout.is_empty() && out.stderr.contains("no images"),
        "{out}"
    );
}

#[test]
fn image_commands_refuse_what_they_cannot_use() {
    let p = Project::empty();
    std::fs::create_dir(p.dir().join("rootfs")).unwrap();
    std::fs::write(p.dir().join("junk.tar"), b"not a tar").unwrap();
    for (args, needle) in [
        (&["import", "missing.tar"][..], "image \"missing.tar\""),
        (
            &["import", "rootfs"],
            "not a docker-archive file nor an OCI layout",
        ),
        (&["import", "junk.tar"], "is not a tar archive"),
        (&["pull", "app.tar"], "not a registry reference"),
        (
            &["pull", "debian:bookworm"],
            "registry reference `host[:port]/name",
        ),
        (
            &["import", "127.0.0.1:1/app:1"],
            "a registry reference; registry images are fetched with `psy image pull`",
        ),
    ] {
        let out = psy_image(&p, args);
        out.code(2);
        assert!(out.stderr.contains(needle), "{needle}\n{out}");
    }
}

#[test]
fn image_pull_from_a_registry_then_from_the_store() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let p = Project::empty();
    image().write_docker_archive(&p.dir().join("app.tar"), None);
    registry.push(&p.dir().join("app.tar"), "team/app:1", &[]);
    let reference = format!("{}/team/app:1", registry.host());
    let out = psy_image(&p, &["pull", &reference]);
    out.code(0);
    assert_eq!(out.stderr.matches(": unpacked").count(), 2, "{out}");
    let digest = out.stdout.trim().to_string();
    let out = psy_image(&p, &["pull", &reference]);
    out.code(0);
    assert_eq!(out.stdout.trim(), digest);
    assert_eq!(out.stderr.matches("already unpacked").count(), 2, "{out}");
    let out = psy_image(&p, &["ls"]);
    assert!(
        out.stdout.contains(&reference)
            && out
                .stdout
                .contains(&format!("{}/team/app@{digest}", registry.host())),
        "{out}"
    );
    let out = psy_image(&p, &["pull", &format!("{}/team/nope:1", registry.host())]);
    out.code(2);
    assert!(out.stderr.contains("answered 404"), "{out}");
}

#[test]
fn gc_removes_images_unused_for_30_days() {
    let p = Project::new("[[test]]\nname = \"t\"\ncommand = [\"true\"]\n");
    image().write_docker_archive(&p.dir().join("app.tar"), Some("localhost/app:1"));
    let digest = psy_image(&p, &["import", "app.tar"])
        .code(0)
        .stdout
        .trim()
        .to_string();
    let store = p.dir().join("store");
    let gc = |p: &Project| {
        Out::of({
            let mut cmd = p.command(&["gc"]);
            cmd.env("PSY_IMAGE_STORE", &store);
            cmd
        })
    };
    let out = gc(&p);
    out.code(0);
    assert!(
        out.stderr.contains("removed 0 images unused for 30 days"),
        "{out}"
    );
    // The store's documented record: last used 31 days ago.
    let record = store.join("images").join(format!("{}.json", &digest[7..]));
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    json["used"] = serde_json::json!(json["used"].as_u64().unwrap() - 31 * 86400);
    std::fs::write(&record, serde_json::to_vec(&json).unwrap()).unwrap();
    let out = gc(&p);
    out.code(0);
    assert!(
        out.stderr
            .contains("removed 1 image unused for 30 days and 2 unpacked layers"),
        "{out}"
    );
    assert!(psy_image(&p, &["ls"]).stderr.contains("no images"));
}

#[test]
fn image_import_by_two_processes_at_once_unpacks_each_layer_once() {
    let p = Project::empty();
    image().write_docker_archive(&p.dir().join("app.tar"), None);
    let store = p.dir().join("store");
    let args = [
        "image",
        "import",
        "app.tar",
        "--store",
        store.to_str().unwrap(),
    ];
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = p.command(&args);
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for output in &outputs {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(outputs[0].stdout, outputs[1].stdout, "one digest");
    let unpacked: usize = outputs
        .iter()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .matches(": unpacked")
                .count()
        })
        .sum();
    assert_eq!(
        unpacked, 2,
        "each of the 2 layers unpacked by one process only"
    );
    let layers = std::fs::read_dir(store.join("layers"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(layers, 2);
}
