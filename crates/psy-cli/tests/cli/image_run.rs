//! `image = "..."` end to end: tests run in an image's root (here a root filesystem directory
//! made from Debian's static busybox), with a writable layer of their own, beside tests on the
//! host's root; bad images are refused before anything runs.

use crate::support::{root, value, Project};
use std::os::unix::fs::symlink;
use std::path::Path;

const BUSYBOX: &str = "/bin/busybox";

/// A root filesystem directory with busybox and a marker file, in the project.
fn rootfs(p: &Project) -> bool {
    if !Path::new(BUSYBOX).exists() {
        eprintln!("skipped: no {BUSYBOX} (Debian's busybox-static)");
        return false;
    }
    let bin = p.dir().join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(p.dir().join("rootfs/etc")).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    for applet in ["sh", "cat", "echo", "id", "test", "hostname", "pwd"] {
        symlink("busybox", bin.join(applet)).unwrap();
    }
    std::fs::write(p.dir().join("rootfs/etc/flavour"), "busybox-image\n").unwrap();
    true
}

#[test]
fn tests_run_in_the_image_with_their_own_writable_layer() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[defaults]
image = "./rootfs"

[[test]]
name = "in-image"
command = ["sh", "-c", "echo flavour=$(cat /etc/flavour); echo hostname=$(cat /etc/hostname); echo x > /etc/flavour && echo wrote=yes; test -e /etc/debian_version && echo host=visible; echo uid=$(id -u); echo project=$(cat marker)"]

[[test]]
name = "again"
command = ["sh", "-c", "echo flavour=$(cat /etc/flavour)"]

[[test]]
name = "on-host"
host = true
command = ["sh", "-c", "test -e /etc/debian_version && echo host=visible"]
"#,
    );
    if !rootfs(&p) {
        return;
    }
    p.file("marker", "project-visible\n");
    let (out, events) = p.run_json(&[]);
    out.code(0);
    let printed = events.printed("in-image", 1);
    assert_eq!(value(&printed, "flavour"), "busybox-image");
    assert_eq!(value(&printed, "hostname"), "in-image");
    assert_eq!(value(&printed, "wrote"), "yes");
    assert_eq!(value(&printed, "uid"), "0");
    assert_eq!(value(&printed, "project"), "project-visible");
    assert!(printed.iter().all(|(k, _)| k != "host"), "{printed:?}");
    // Each attempt writes its own layer: the image is unchanged for the next.
    assert_eq!(
        value(&events.printed("again", 1), "flavour"),
        "busybox-image"
    );
    assert_eq!(
        std::fs::read_to_string(p.dir().join("rootfs/etc/flavour")).unwrap(),
        "busybox-image\n"
    );
    assert_eq!(value(&events.printed("on-host", 1), "host"), "visible");
    // Every attempt says which image produced it; host attempts name none.
    let rootfs = std::fs::canonicalize(p.dir().join("rootfs")).unwrap();
    let id = format!("dir:{}", rootfs.display());
    assert_eq!(events.attempts("in-image")[0]["image"], id.as_str());
    assert!(events.attempts("on-host")[0].get("image").is_none());
    let show = p.psy(&["show", events.run_id(), "in-image"]);
    assert!(
        show.stdout
            .contains(&format!("attempt 1 ran in image {id}")),
        "{show}"
    );
    // Nothing of the writable layers is left.
    let volumes = p.dir().join(".psyduck/volumes");
    let left: Vec<_> = walk(&volumes);
    assert!(left.is_empty(), "{left:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let mut found = walk(&e.path());
            found.push(e.path());
            found
        })
        .collect()
}

#[test]
fn images_that_cannot_be_used_are_refused_before_anything_runs() {
    let p = Project::new("[[test]]\nname = \"a\"\ncommand = [\"true\"]\nimage = \"./missing\"\n");
    let out = p.psy(&["run"]);
    out.code(2);
    assert!(
        out.stderr.contains("test `a` (psyduck.toml:1): image ")
            && out.stderr.contains("missing")
            && out.stderr.contains("no such file or directory"),
        "{out}"
    );
    let p = Project::new(
        "[[test]]\nname = \"a\"\ncommand = [\"true\"]\nimage = \".\"\nprivileged = true\n",
    );
    let out = p.psy(&["run", "--allow-privileged"]);
    out.code(2);
    assert!(out.stderr.contains("cannot have an image"), "{out}");
}

/// A two-layer image (busybox, then a file and a whiteout), its config's `Env` and
/// `WorkingDir` set.
fn archive_image() -> psy_image::testing::TestImage {
    use psy_image::testing::{TestImage, TestLayer};
    let base = TestLayer::new()
        .busybox()
        .file("etc/os-release", b"ID=psy\n", 0o644)
        .dir("work", 0o755);
    let top = TestLayer::new()
        .whiteout("etc/os-release")
        .file("hello", b"hi\n", 0o644);
    TestImage::new(vec![base, top])
}

/// `image = "app.tar"` (a docker-archive) and the same image from a real registry: imported
/// or pulled into the store before the run, each layer unpacked once; the config's `Env` and
/// `WorkingDir` apply under the test's own; every attempt records the image's digest.
#[test]
fn tests_run_in_archive_and_registry_images() {
    if !root() {
        return;
    }
    let registry = psy_image::testing::TestRegistry::start();
    let p = Project::empty();
    archive_image().write_docker_archive(&p.dir().join("app.tar"), Some("localhost/app:1"));
    let script = "echo hello=$(cat /hello); test -e /etc/os-release && echo whiteout=ignored; echo image=$IMAGE; echo mine=$MINE; echo cwd=$(pwd)";
    let mut manifest = format!(
        "[[test]]\nname = \"archive\"\nimage = \"app.tar\"\nenv = {{ MINE = \"test\" }}\ncommand = [\"sh\", \"-c\", \"{script}\"]\n"
    );
    if let Some(registry) = &registry {
        registry.push(&p.dir().join("app.tar"), "team/app:1", &[]);
        manifest.push_str(&format!(
            "[[test]]\nname = \"registry\"\nimage = \"{}/team/app:1\"\nenv = {{ MINE = \"test\" }}\ncommand = [\"sh\", \"-c\", \"{script}\"]\n",
            registry.host()
        ));
    }
    p.file("psyduck.toml", &manifest);
    let store = p.dir().join("store");
    let mut cmd = p.command(&["run", "--message-format", "json"]);
    cmd.env("PSY_IMAGE_STORE", &store);
    let out = crate::support::Out::of(cmd);
    out.code(0);
    let events = crate::support::Events::parse(&out);
    let mut tests = vec!["archive"];
    if registry.is_some() {
        tests.push("registry");
    }
    for test in tests {
        let printed = events.printed(test, 1);
        assert_eq!(value(&printed, "hello"), "hi", "{test}");
        assert_eq!(value(&printed, "image"), "test", "{test}");
        assert_eq!(value(&printed, "mine"), "test", "{test}");
        assert_eq!(value(&printed, "cwd"), "/work", "{test}");
        assert!(printed.iter().all(|(k, _)| k != "whiteout"), "{printed:?}");
        let image = events.attempts(test)[0]["image"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(image.starts_with("sha256:"), "{image}");
    }
    // The layers were unpacked once, into the store.
    assert_eq!(
        out.stderr.matches("unpacking image layer").count(),
        2,
        "{out}"
    );
}

/// A registry that is not on a loopback name is reached over HTTPS unless the host file lists
/// it in `[images] insecure-registries`. `0.0.0.0:PORT` reaches the test registry on 127.0.0.1
/// without being a loopback name.
#[test]
fn insecure_registries_come_from_the_host_file() {
    if !root() {
        return;
    }
    let Some(registry) = psy_image::testing::TestRegistry::start() else {
        return;
    };
    let p = Project::empty();
    archive_image().write_docker_archive(&p.dir().join("app.tar"), None);
    registry.push(&p.dir().join("app.tar"), "team/plain:1", &[]);
    let name = format!("0.0.0.0:{}", registry.port());
    p.file(
        "psyduck.toml",
        &format!(
            "[[test]]\nname = \"plain\"\nimage = \"{name}/team/plain:1\"\ncommand = [\"sh\", \"-c\", \"cat /hello\"]\n"
        ),
    );
    let run = |host_file: &str| {
        let mut cmd = p.command(&["run"]);
        cmd.env("PSY_IMAGE_STORE", p.dir().join("store"))
            .env("PSY_HOST_FILE", p.dir().join(host_file));
        crate::support::Out::of(cmd)
    };
    // Over HTTPS the plain HTTP registry cannot answer: refused before the run, naming the test.
    let out = run("none.toml");
    out.code(2);
    assert!(
        out.stderr.contains("plain") && out.stderr.contains(&format!("https://{name}")),
        "{out}"
    );
    p.file(
        "host.toml",
        &format!("[images]\ninsecure-registries = [\"{name}\"]\n"),
    );
    run("host.toml").code(0);
}

/// The config's `User` (a name in the image's `/etc/passwd`): the test runs as that user, owns
/// its scratch area, and cannot write what the image gives to root.
#[test]
fn tests_run_as_the_images_user() {
    if !root() {
        return;
    }
    use psy_image::testing::{TestImage, TestLayer};
    let layer = TestLayer::new()
        .busybox()
        .file(
            "etc/passwd",
            b"root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
            0o644,
        )
        .file("etc/group", b"root:x:0:\napp:x:1001:\n", 0o644)
        .dir("work", 0o755);
    let mut image = TestImage::new(vec![layer]);
    image.user = Some("app".into());
    let p = Project::empty();
    image.write_docker_archive(&p.dir().join("app.tar"), None);
    p.file(
        "psyduck.toml",
        "[[test]]\nname = \"as-app\"\nimage = \"app.tar\"\ncommand = [\"sh\", \"-c\", \"echo ids=$(id -u):$(id -g); echo x > $PSY_SCRATCH/f && echo scratch=ok; echo x > /etc/f 2>/dev/null || echo etc=refused\"]\n",
    );
    let mut cmd = p.command(&["run", "--message-format", "json"]);
    cmd.env("PSY_IMAGE_STORE", p.dir().join("store"));
    let out = crate::support::Out::of(cmd);
    out.code(0);
    let printed = crate::support::Events::parse(&out).printed("as-app", 1);
    assert_eq!(value(&printed, "ids"), "1000:1001");
    assert_eq!(value(&printed, "scratch"), "ok");
    assert_eq!(value(&printed, "etc"), "refused");
}

/// `project-path`: the project appears at that path inside the image (read-only, psy's state
/// still masked there), and a test without `cwd` starts in it; without an image it is refused.
#[test]
fn the_project_appears_at_its_project_path() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "moved"
image = "./rootfs"
project-path = "/src"
command = ["sh", "-c", "echo cwd=$(pwd); echo marker=$(cat /src/marker); test -e /src/.psyduck/psyduck.db && echo state=visible; echo x > /src/probe 2>/dev/null && echo project=writable; echo done=yes"]
"#,
    );
    if !rootfs(&p) {
        return;
    }
    p.file("marker", "moved-project\n");
    let (out, events) = p.run_json(&[]);
    out.code(0);
    let printed = events.printed("moved", 1);
    assert_eq!(value(&printed, "cwd"), "/src");
    assert_eq!(value(&printed, "marker"), "moved-project");
    assert_eq!(value(&printed, "done"), "yes");
    assert!(
        printed.iter().all(|(k, _)| k != "state" && k != "project"),
        "{printed:?}"
    );
    let p = Project::new("[[test]]\nname = \"a\"\ncommand = [\"true\"]\nproject-path = \"/src\"\n");
    let out = p.psy(&["run"]);
    out.code(2);
    assert!(
        out.stderr
            .contains("project-path = \"/src\" needs an image"),
        "{out}"
    );
}
