//! Containers whose root is an image's layers (overlayfs), not the host's root (root only;
//! prints "skipped" otherwise). The layers are made here from Debian's static busybox.

mod support;

use psy_sandbox::ImageRoot;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use support::Fixture;

const BUSYBOX: &str = "/bin/busybox";

/// A two-layer image: busybox with its applets and an `/etc/passwd` below; above, a new file,
/// a changed one, and a whiteout hiding one of the base layer's files.
fn layers(dir: &Path) -> Vec<PathBuf> {
    let base = dir.join("layer0");
    for sub in ["bin", "etc", "usr/bin", "gone"] {
        std::fs::create_dir_all(base.join(sub)).unwrap();
    }
    std::fs::copy(BUSYBOX, base.join("bin/busybox")).unwrap();
    for applet in [
        "sh",
        "cat",
        "ls",
        "echo",
        "id",
        "stat",
        "touch",
        "hostname",
        "grep",
        "mount",
        "umount",
        "unshare",
        "chroot",
        "pivot_root",
        "mkdir",
        "test",
    ] {
        symlink("busybox", base.join("bin").join(applet)).unwrap();
    }
    std::fs::write(base.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(base.join("etc/motd"), "base\n").unwrap();
    std::fs::write(base.join("gone/file"), "hidden above\n").unwrap();
    let top = dir.join("layer1");
    std::fs::create_dir_all(top.join("etc")).unwrap();
    std::fs::write(top.join("etc/motd"), "top\n").unwrap();
    std::fs::write(top.join("added"), "from the top layer\n").unwrap();
    // An overlayfs whiteout: a character device 0:0 named like what it hides.
    let whiteout = std::ffi::CString::new(top.join("gone").to_str().unwrap()).unwrap();
    // SAFETY: mknod on a C string path we own.
    let made = unsafe { libc::mknod(whiteout.as_ptr(), libc::S_IFCHR, libc::makedev(0, 0)) };
    assert_eq!(made, 0, "{}", std::io::Error::last_os_error());
    vec![base, top]
}

/// A fixture and the two layers (kept in the temporary directory returned), or `None` after
/// saying why the test is skipped.
fn image_fixture() -> Option<(Fixture, tempfile::TempDir, Vec<PathBuf>)> {
    if !Path::new(BUSYBOX).exists() {
        eprintln!("skipped: no {BUSYBOX} (Debian's busybox-static)");
        return None;
    }
    let f = Fixture::new();
    let images = tempfile::tempdir_in(f.project()).unwrap();
    let layers = layers(images.path());
    Some((f, images, layers))
}

fn image_root(f: &Fixture, layers: Vec<PathBuf>, n: usize) -> ImageRoot {
    let writable = f.project().join(format!("upper{n}"));
    std::fs::create_dir_all(writable.join("upper")).unwrap();
    std::fs::create_dir_all(writable.join("work")).unwrap();
    ImageRoot {
        layers,
        upper_dir: writable.join("upper"),
        work_dir: writable.join("work"),
        user_xattrs: false,
        user: None,
        project_path: None,
    }
}

#[test]
fn the_root_is_the_images_with_a_writable_layer_of_its_own() {
    require_root!();
    let Some((f, _images, layers)) = image_fixture() else {
        return;
    };
    std::fs::write(f.project().join("marker"), "project-visible\n").unwrap();
    let script = "cat /etc/motd /added; ls /gone 2>&1 || echo whiteout-honoured; \
                  test -e /etc/os-release && echo host-root-visible; \
                  cat \"$PROJECT/marker\"; touch \"$PROJECT/probe\" 2>/dev/null && echo project-writable; \
                  echo x > \"$PSY_SCRATCH/s\" && echo scratch-ok; \
                  echo new > /etc/motd && echo written > /written && echo root-writable; \
                  cat /etc/hostname; id -u; stat -c 'owner=%u' /bin/busybox; ls /proc/1 >/dev/null && echo proc-ok";
    let (mut spec, out) = f.spec(script);
    spec.image = Some(image_root(&f, layers.clone(), 0));
    let upper = spec.image.as_ref().unwrap().upper_dir.clone();
    let mut c = f.sandbox.spawn(spec, &support::limits()).unwrap();
    c.wait_timeout(None).unwrap();
    let o = c.finish();
    let out = std::fs::read_to_string(out).unwrap();
    assert_eq!(o.exit.code, Some(0), "{out} {:?}", o.setup_error);
    for expected in [
        "top\nfrom the top layer\n",
        "whiteout-honoured",
        "project-visible",
        "scratch-ok",
        "root-writable",
        "psy-test-host",
        "proc-ok",
    ] {
        assert!(out.contains(expected), "{expected:?} not in\n{out}");
    }
    assert!(!out.contains("host-root-visible"), "{out}");
    assert!(!out.contains("project-writable"), "{out}");
    assert!(!f.project().join("probe").exists());
    // Container root, and the image's root-owned files are its own (id-mapped layers).
    assert!(out.contains("\n0\nowner=0\n"), "{out}");
    // Writes went to the attempt's layer, not the image's.
    assert_eq!(
        std::fs::read_to_string(upper.join("written")).unwrap(),
        "written\n"
    );
    assert_eq!(
        std::fs::read_to_string(layers[1].join("etc/motd")).unwrap(),
        "top\n"
    );
    assert!(!layers[1].join("written").exists() && !layers[0].join("written").exists());
}

#[test]
fn a_command_missing_from_the_image_is_a_setup_error() {
    require_root!();
    let Some((f, _images, layers)) = image_fixture() else {
        return;
    };
    let (mut spec, _) = f.spec("true");
    // Host tools are not in the image.
    spec.argv = vec!["python3".into(), "-c".into(), "pass".into()];
    spec.image = Some(image_root(&f, layers, 1));
    let mut c = f.sandbox.spawn(spec, &support::limits()).unwrap();
    c.wait_timeout(None).unwrap();
    let o = c.finish();
    let error = o.setup_error.expect("no python3 in the image");
    assert!(
        error.to_string().contains("executing the command"),
        "{error}"
    );
}

/// A classic `chroot` escape, in C (the image has no compiler): chroot into a subdirectory while
/// the working directory stays outside it, walk `..` far up, chroot there; then report what is
/// in sight.
const CHROOT_ESCAPE: &str = r#"
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    mkdir("/jail", 0755);
    if (chroot("/jail") != 0) { perror("chroot"); }
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") != 0) { perror("chroot ."); }
    struct stat st;
    if (stat("/etc/os-release", &st) == 0) puts("escaped: the host's /etc/os-release");
    if (stat("/w", &st) == 0) puts("escaped: the template's /w");
    if (stat("/added", &st) == 0) puts("still in the image");
    return 0;
}
"#;

/// Root in an image container attacks what lies below its root: the image template (`/w`:
/// its layers' mount points and writable directory) and the host. The root is entered by
/// moving it over `/` and `chroot` (no `pivot_root`), so the attacks aim at exactly that.
#[test]
fn an_image_root_cannot_be_left() {
    require_root!();
    let Some((f, _images, layers)) = image_fixture() else {
        return;
    };
    let escape = layers[1].join("escape");
    let source = f.project().join("escape.c");
    std::fs::write(&source, CHROOT_ESCAPE).unwrap();
    let built = std::process::Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&escape)
        .arg(&source)
        .status();
    if !matches!(built, Ok(s) if s.success()) {
        eprintln!("skipped: no gcc with a static libc (Debian's gcc, libc6-dev)");
        return;
    }
    let script = "/escape; \
        unshare -m sh -c 'umount -l / 2>&1; umount -l /proc 2>&1; ls / ; \
            test -e /etc/os-release && echo escaped-by-umount; test -e /w && echo template-by-umount; \
            mkdir -p /new/old && mount -t tmpfs none /new 2>&1; mkdir -p /new/old; \
            cd /new && pivot_root . old 2>&1 && (ls /old; test -e /old/w && echo template-by-pivot; \
            test -e /old/etc/os-release && echo host-by-pivot)'; \
        mount -t tmpfs none /tmp 2>&1 && echo mounted-in-the-root-namespace; \
        umount -l / 2>&1 && echo unmounted-the-root; \
        test -e /w && echo template-visible; \
        cat /proc/1/mountinfo | grep -c . ; echo done";
    let (mut spec, out) = f.spec(script);
    spec.image = Some(image_root(&f, layers, 2));
    let mut c = f.sandbox.spawn(spec, &support::limits()).unwrap();
    c.wait_timeout(None).unwrap();
    let o = c.finish();
    let out = std::fs::read_to_string(out).unwrap();
    assert!(o.setup_error.is_none(), "{:?}", o.setup_error);
    assert!(
        out.contains("still in the image") && out.contains("done"),
        "{out}"
    );
    for escaped in [
        "escaped",
        "template",
        "host-by-pivot",
        "mounted-in-the-root-namespace",
        "unmounted-the-root",
    ] {
        assert!(!out.contains(escaped), "{escaped:?} in\n{out}");
    }
}

/// Containers of one image in a row: after the first, their overlays come ready-made from the
/// pool (`overlay_pool.rs`: writable layers `<n>/upper` on the pool worker's tmpfs); each still
/// gets a writable layer of its own, empty at its start, owns its root directory and its
/// `/etc` files, and leaves the image's layers as they were.
#[test]
fn pooled_overlays_give_each_attempt_an_empty_writable_layer_of_its_own() {
    require_root!();
    let Some((f, _images, layers)) = image_fixture() else {
        return;
    };
    // As in many images: written through the overlay, the attempt's file replaces it.
    symlink("../run/stub-resolv.conf", layers[0].join("etc/resolv.conf")).unwrap();
    let mut pooled = 0;
    for n in 10..22 {
        let script = format!(
            "test -e /mine && echo stale-layer; echo {n} > /mine && echo written; \
             grep -q 'upperdir=[^,]*/rw/[0-9]*/upper' /proc/self/mountinfo && echo pooled; \
             stat -c 'root-owner=%u' /; stat -c 'hostname-owner=%u' /etc/hostname; \
             cat /etc/hostname; cat /etc/motd /added; echo changed > /etc/motd; \
             test -f /etc/resolv.conf -a ! -L /etc/resolv.conf && echo resolv-file"
        );
        let (mut spec, out) = f.spec(&script);
        spec.image = Some(image_root(&f, layers.clone(), n));
        let mut c = f.sandbox.spawn(spec, &support::limits()).unwrap();
        c.wait_timeout(None).unwrap();
        let o = c.finish();
        let out = std::fs::read_to_string(out).unwrap();
        assert_eq!(o.exit.code, Some(0), "{out} {:?}", o.setup_error);
        assert!(!out.contains("stale-layer"), "attempt {n}: {out}");
        for expected in [
            "written",
            "root-owner=0",
            "hostname-owner=0",
            "psy-test-host",
            "resolv-file",
            "top\nfrom the top layer\n",
        ] {
            assert!(
                out.contains(expected),
                "attempt {n}: {expected:?} not in\n{out}"
            );
        }
        pooled += usize::from(out.contains("pooled"));
        // The pool's worker makes the next ones meanwhile.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        pooled >= 10,
        "only {pooled} of 12 attempts had a pooled overlay"
    );
    assert_eq!(
        std::fs::read_to_string(layers[1].join("etc/motd")).unwrap(),
        "top\n"
    );
    assert!(!layers[0].join("mine").exists() && !layers[1].join("mine").exists());
}

/// A start that fails after taking a ready overlay (here: its hosts file is missing) hands it
/// back: the pool goes on making overlays for the next starts.
#[test]
fn failed_starts_give_their_pooled_overlays_back() {
    require_root!();
    let Some((f, _images, layers)) = image_fixture() else {
        return;
    };
    let check = "grep -q 'upperdir=[^,]*/rw/[0-9]*/upper' /proc/self/mountinfo && echo pooled";
    let run = |n: usize, hosts: Option<PathBuf>| {
        let (mut spec, out) = f.spec(check);
        spec.image = Some(image_root(&f, layers.clone(), n));
        spec.hosts_file = hosts;
        let started = f.sandbox.spawn(spec, &support::limits());
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut c = started.ok()?;
        c.wait_timeout(None).unwrap();
        c.finish();
        Some(std::fs::read_to_string(out).unwrap())
    };
    // The first start makes the pool (and its own overlay).
    assert!(run(30, None).is_some());
    for n in 31..36 {
        let missing = f.project().join("no-such-hosts-file");
        assert!(run(n, Some(missing)).is_none(), "attempt {n} started");
    }
    let outs: Vec<String> = (36..40).filter_map(|n| run(n, None)).collect();
    assert_eq!(outs.len(), 4);
    let pooled = outs.iter().filter(|o| o.contains("pooled")).count();
    assert!(
        pooled >= 3,
        "only {pooled} of 4 starts after the failed ones were pooled"
    );
}
