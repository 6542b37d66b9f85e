//! `psy run` as an ordinary user (a developer's laptop): the same isolation through a user
//! namespace, and one plain warning about the cgroup limits it cannot apply. Needs root to create
//! the user (CI is root); prints "skipped" otherwise.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

#[path = "common/ci_user.rs"]
mod ci_user;
use ci_user::{ensure_user, USER};

fn chown_tree(path: &Path, uid: u32) {
    let status = Command::new("chown")
        .args(["-R", &uid.to_string()])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The unprivileged user's uid; `None` (the test skips) when not root, who alone can make it.
fn user() -> Option<u32> {
    // SAFETY: trivial getter.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root (to create the user {USER})");
        return None;
    }
    Some(ensure_user())
}

/// A directory the unprivileged user can enter (tests chown it to that user).
fn project_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("unpriv-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn unprivileged_run_is_isolated_and_warns_once() {
    let Some(uid) = user() else { return };
    let dir = project_dir();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A process of the same user outside psy, which the kernel would let a test signal but for
    // the PID namespace; recognised by its argv[0], since pids alone prove nothing when this test
    // itself runs in a PID namespace (psy running its own suite) where the container's pids
    // repeat this one's.
    let victim_name = format!("psy-victim-{}", std::process::id());
    let mut victim = Command::new("sleep")
        .arg0(&victim_name)
        .arg("600")
        .uid(uid)
        .spawn()
        .unwrap();
    let host_pid = victim.id();
    // Matches the victim's argv[0] but not itself (grep's own argv holds the pattern).
    let victim_pattern = format!("psy-victi[m]-{}", std::process::id());
    std::fs::write(
        dir.path().join("psyduck.toml"),
        format!(
            r#"
[defaults]
timeout = "30s"
cpus = 0.5
memory = "128MiB"

[[test]]
name = "own-pid-namespace"
command = ["sh", "-c", "test $$ = 2 && test $(ls /proc | grep -c '^[0-9]*$') -le 6"]

[[test]]
name = "cannot-signal-host"
command = ["sh", "-c", "kill -0 {host_pid} 2>/dev/null && grep -qs '{victim_pattern}' /proc/{host_pid}/cmdline && exit 1; exit 0"]

[[test]]
name = "read-only-project"
command = ["sh", "-c", "! touch probe 2>/dev/null && echo ok > /tmp/x && echo ok > $PSY_SCRATCH/x"]

[[test]]
name = "no-host-loopback"
command = ["python3", "-c", "import socket,sys; s=socket.socket(); s.settimeout(2); sys.exit(s.connect_ex(('127.0.0.1', {port})) == 0)"]

[[test]]
name = "hostname"
command = ["sh", "-c", "test $(hostname) = hostname"]

[[test]]
name = "fails"
command = ["false"]
"#
        ),
    )
    .unwrap();
    chown_tree(dir.path(), uid);
    let out = Command::new("runuser")
        .args([
            "-u",
            USER,
            "--",
            env!("CARGO_BIN_EXE_psy"),
            "run",
            "--color",
            "never",
            "-m",
        ])
        .arg(dir.path().join("psyduck.toml"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Exactly one failing test (the control), everything else isolated as expected.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("FAIL") && stderr.contains("fails"),
        "{stderr}"
    );
    for name in [
        "own-pid-namespace",
        "cannot-signal-host",
        "read-only-project",
        "no-host-loopback",
        "hostname",
    ] {
        assert!(
            !stderr.contains(&format!("] {name}")),
            "{name} failed as an ordinary user:\n{stderr}"
        );
    }
    assert_eq!(
        stderr.matches("NOT enforced").count(),
        1,
        "one warning about cgroup limits:\n{stderr}"
    );
    assert!(!dir.path().join("probe").exists());
    drop(listener);
    let _ = victim.kill();
    let _ = victim.wait();
}

/// `disk`, volumes and `network` need root: as an ordinary user psy refuses them up front
/// (exit 2, the test and the key named) instead of failing each test as it starts.
#[test]
fn root_only_requests_are_refused_before_anything_runs() {
    let Some(uid) = user() else { return };
    let cases = [
        ("disk = \"64MiB\"\n", "`disk`"),
        ("network = { egress = \"10Mbit\" }\n", "`network`"),
        (
            "[[test.volume]]\nname = \"v\"\nsize = \"64MiB\"\npath = \"/tmp/v\"\n",
            "`[[test.volume]]`",
        ),
    ];
    for (extra, key) in cases {
        let dir = project_dir();
        let manifest = format!(
            "[[test]]\nname = \"plain\"\ncommand = [\"true\"]\n\n[[test]]\nname = \"needy\"\ncommand = [\"true\"]\n{extra}"
        );
        std::fs::write(dir.path().join("psyduck.toml"), manifest).unwrap();
        chown_tree(dir.path(), uid);
        let out = Command::new("runuser")
            .args(["-u", USER, "--", env!("CARGO_BIN_EXE_psy"), "run", "-m"])
            .arg(dir.path().join("psyduck.toml"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {stderr}");
        let expected = format!("error: test \"needy\" (psyduck.toml:5) asks for {key}");
        assert!(
            stderr.starts_with(&expected) && stderr.contains("needs root"),
            "{key}: {stderr}"
        );
        assert!(
            !dir.path().join(".psyduck/psyduck.db").exists(),
            "nothing ran or was recorded"
        );
    }
}

/// Strict mode as an ordinary user on cgroup v1, where no cgroup is writable: memory limits
/// cannot be enforced, so `--require-guarantees` refuses up front, naming the test and why.
#[test]
fn strict_mode_refuses_memory_limits_it_cannot_enforce() {
    let Some(uid) = user() else { return };
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        eprintln!("skipped: the memory controller is not on cgroup v1 here");
        return;
    }
    let dir = project_dir();
    std::fs::write(
        dir.path().join("psyduck.toml"),
        "[[test]]\nname = \"small\"\ncommand = [\"true\"]\nmemory = \"128MiB\"\n",
    )
    .unwrap();
    chown_tree(dir.path(), uid);
    let psy = |strict: bool| {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", USER, "--", env!("CARGO_BIN_EXE_psy"), "run"])
            .args(strict.then_some("--require-guarantees"))
            .arg("-m")
            .arg(dir.path().join("psyduck.toml"))
            .env("NO_COLOR", "1");
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = psy(true);
    assert_eq!(code, Some(2), "{stderr}");
    for expected in [
        format!("memory limits are not enforced: cgroup v1 needs root and this process runs as uid {uid}"),
        "test `small` (psyduck.toml:1) asks memory = 128MiB".to_owned(),
    ] {
        assert!(stderr.contains(&expected), "{expected:?} in:\n{stderr}");
    }
    assert!(
        !dir.path().join(".psyduck/psyduck.db").exists() || !stderr.contains("Running"),
        "nothing ran:\n{stderr}"
    );
    // Without the flag: the run goes ahead, with the warnings.
    let (code, stderr) = psy(false);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("1 test asks for guarantees this host cannot enforce: CPU limits (1 test), memory limits (1 test)"),
        "{stderr}"
    );
}

/// An image root without root: the layers are the user's own (an unpacked rootfs), mounted with
/// overlayfs inside the init's user namespace; the project lies under `/tmp`, which the init's
/// layer mounts must not cover.
#[test]
fn unprivileged_tests_run_in_an_image() {
    if user().is_none() {
        return;
    }
    if !Path::new("/bin/busybox").exists() {
        eprintln!("skipped: no /bin/busybox (Debian's busybox-static)");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("unpriv-image-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for applet in ["sh", "cat", "id"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("rootfs/etc")).unwrap();
    std::fs::write(dir.path().join("rootfs/etc/flavour"), "image\n").unwrap();
    std::fs::write(
        dir.path().join("psyduck.toml"),
        r#"
[[test]]
name = "in-image"
image = "./rootfs"
command = ["sh", "-c", "test $(cat /etc/flavour) = image && test $(id -u) = 0 && echo new > /etc/flavour && test ! -e /etc/debian_version"]
"#,
    )
    .unwrap();
    // The user's group too, as an image unpacked without root is: a file of a group the
    // user's namespace does not map cannot be copied up (EOVERFLOW).
    let status = Command::new("chown")
        .args(["-R", &format!("{USER}:")])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new("runuser")
        .args(["-u", USER, "--", env!("CARGO_BIN_EXE_psy"), "run", "-m"])
        .arg(dir.path().join("psyduck.toml"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("rootfs/etc/flavour")).unwrap(),
        "image\n"
    );
    // The writable layer is gone, overlayfs' mode-000 work directories too (the user owns them
    // but could not list them).
    assert!(!stderr.contains("removing"), "{stderr}");
    let volumes = dir.path().join(".psyduck/volumes");
    let left: Vec<_> = std::fs::read_dir(&volumes)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", volumes.display());
}

/// `warm = true` as an ordinary user: the warm child joins the container's user namespace
/// itself and forks once more into its PID namespace (see `JoinEntry`), and still gets a
/// private `/tmp`, its own PID namespace and a read-only project. Needs pytest for the system's
/// Python (`python3-pytest`, which scripts/test installs).
#[test]
fn unprivileged_warm_tests_are_isolated() {
    let Some(uid) = user() else { return };
    let python = "/usr/bin/python3";
    let has_pytest = Command::new(python)
        .args(["-c", "import pytest"])
        .uid(uid)
        .status()
        .is_ok_and(|s| s.success());
    if !has_pytest {
        eprintln!("skipped: {python} has no pytest (install python3-pytest)");
        return;
    }
    let dir = project_dir();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("psyduck.toml"),
        format!(
            "[[discover]]\npytest = {{ args = [\"tests\"], warm = true, python = \"{python}\" }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tests/test_rootless.py"),
        r#"
import os, time

def _same_tmp(mine):
    with open("/tmp/shared", "w") as f:
        f.write(mine)
    time.sleep(0.3)
    with open("/tmp/shared") as f:
        assert f.read() == mine

def test_a():
    _same_tmp("a")

def test_b():
    _same_tmp("b")

def test_isolated():
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    assert os.getpid() < 10 and len(pids) < 6, (os.getpid(), pids)
    try:
        open("written", "w")
    except OSError:
        pass
    else:
        raise AssertionError("the project is writable")

def test_fails():
    assert False, "the control"
"#,
    )
    .unwrap();
    chown_tree(dir.path(), uid);
    let out = Command::new("runuser")
        .args([
            "-u",
            USER,
            "--",
            env!("CARGO_BIN_EXE_psy"),
            "run",
            "--color",
            "never",
            "-m",
        ])
        .arg(dir.path().join("psyduck.toml"))
        .env("NO_COLOR", "1")
        .env("PSY_LOG", "psy_runner=debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("passed         3"), "{stderr}");
    assert!(stderr.contains("failed         1"), "{stderr}");
    assert!(
        stderr.contains("forks from the warm interpreter"),
        "the tests did not start warm:\n{stderr}"
    );
    assert!(!dir.path().join("written").exists());
}
