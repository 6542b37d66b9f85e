//! `psy run` as an ordinary user on a cgroup v2 host that delegates a subtree to that user, as
//! systemd does for `systemd-run --user --scope -p Delegate=yes` and for every user session: the
//! limits are enforced without root (no "NOT enforced" warning), a test sees its own limits, and
//! a memory hog is reported `oom` while its neighbours pass.
//!
//! Root builds the delegation by hand (a cgroup owned by the user, controllers enabled above it)
//! and starts psy in it through `runuser`. Needs root and a pure cgroup v2 host: CI runs it in the
//! v2 VM stage (`scripts/test-v2`); elsewhere it prints why it skips.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "common/ci_user.rs"]
mod ci_user;
use ci_user::{ensure_user, USER};
const CGROUP2: &str = "/sys/fs/cgroup";

/// Why this host cannot run the test, if it cannot.
fn unsupported() -> Option<&'static str> {
    // SAFETY: trivial getter.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (to create the user and the delegated cgroup)");
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let v1 = mountinfo.lines().any(|l| l.contains(" - cgroup "));
    if v1 || !Path::new(CGROUP2).join("cgroup.controllers").exists() {
        return Some("needs a pure cgroup v2 host (runs in scripts/test-v2's VM)");
    }
    None
}

/// A cgroup owned by `uid` with the controllers psy needs enabled above it: what systemd's
/// `Delegate=yes` hands a user. Removed on drop.
struct Delegated(PathBuf);

impl Delegated {
    fn new(uid: u32) -> Delegated {
        let root = Path::new(CGROUP2);
        let enable = "+cpu +memory +pids";
        std::fs::write(root.join("cgroup.subtree_control"), enable)
            .expect("enable cpu, memory, pids at the cgroup root");
        let dir = root.join(format!("psy-delegated-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        for path in [
            dir.clone(),
            dir.join("cgroup.procs"),
            dir.join("cgroup.subtree_control"),
            dir.join("cgroup.threads"),
        ] {
            std::os::unix::fs::chown(&path, Some(uid), Some(uid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
        Delegated(dir)
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        // Leaves first (psy's own, then its supervisor leaf), then the delegated group itself.
        let mut dirs = Vec::new();
        let mut stack = vec![self.0.clone()];
        while let Some(dir) = stack.pop() {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                stack.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
            dirs.push(dir);
        }
        for dir in dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn a_delegated_subtree_gives_an_ordinary_user_enforced_limits() {
    if let Some(reason) = unsupported() {
        eprintln!("skipped: {reason}");
        return;
    }
    let uid = ensure_user();
    let delegated = Delegated::new(uid);
    let dir = tempfile::Builder::new()
        .prefix("delegated-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    std::fs::write(
        dir.path().join("psyduck.toml"),
        r#"
[defaults]
timeout = "120s"
cpus = 0.5
memory = "64MiB"
pids = 32

[[test]]
name = "sees-its-limits"
command = ["sh", "-c", "set -e; test $(cat /sys/fs/cgroup/memory.max) = 67108864; test $(cat /sys/fs/cgroup/pids.max) = 32; read q p < /sys/fs/cgroup/cpu.max; test $q = $((p / 2))"]

[[test]]
name = "hog"
command = ["python3", "-c", "b = b'x' * (512 << 20); print(len(b))"]

[[test]]
name = "fine"
command = ["sh", "-c", "echo fine"]
"#,
    )
    .unwrap();
    let status = Command::new("chown")
        .args(["-R", &uid.to_string()])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    // Root moves the shell into the delegated group, then becomes the user there.
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec runuser -u {USER} -- \"$0\" run --color never \
         --message-format json -m \"$1\"",
        delegated.0.display()
    );
    let out = Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_psy")])
        .arg(dir.path().join("psyduck.toml"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let verdict = |name: &str| -> Option<String> {
        stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["type"] == "test-finished" && e["result"]["test_id"] == name)
            .and_then(|e| e["result"]["status"].as_str().map(str::to_owned))
    };
    assert_eq!(
        out.status.code(),
        Some(1),
        "the hog fails the run:\n{stderr}"
    );
    assert!(
        !stderr.contains("NOT enforced"),
        "a delegated user's limits are enforced:\n{stderr}"
    );
    assert_eq!(
        verdict("sees-its-limits").as_deref(),
        Some("pass"),
        "{stderr}"
    );
    assert_eq!(verdict("hog").as_deref(), Some("oom"), "{stderr}");
    assert_eq!(verdict("fine").as_deref(), Some("pass"), "{stderr}");
}
