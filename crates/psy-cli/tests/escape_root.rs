//! The red-team suite: `psy run` on tests that each try to get out of their container, read a
//! neighbour or psy's own state, or change the host (`tests/escape/attacks.toml`). Every attack
//! must be blocked, as root and as an ordinary user; the host is checked afterwards too. A
//! control run with `privileged = true` shows that the probes do see an escape when there is one.
//!
//! Needs root (psy as root, and root to create the unprivileged user); prints "skipped" otherwise.

use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const ATTACKS: &str = include_str!("escape/attacks.toml");
const SYSCALLS: &str = include_str!("escape/syscalls.py");
#[path = "common/ci_user.rs"]
mod ci_user;
use ci_user::{ensure_user, USER};
/// A host sysctl the suite tries to write (and must not change).
const HOST_SYSCTL: &str = "/proc/sys/kernel/printk_ratelimit_burst";

fn root() -> bool {
    // SAFETY: trivial getter.
    unsafe { libc::geteuid() == 0 }
}

/// A project with the attack suite, a secret in its `.psyduck`, and a marked host process.
struct Arena {
    dir: tempfile::TempDir,
    marker: Child,
    secret: PathBuf,
}

impl Arena {
    /// The whole suite, or only the attacks named in `only`; `privileged` runs them all so.
    fn new(only: Option<&[&str]>, privileged: bool) -> Arena {
        let dir = tempfile::Builder::new()
            .prefix("escape-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // A host process whose argv no test may find: `sleep` with a unique duration.
        let marker_arg = format!("3{}.{}", std::process::id() % 1000, rand_suffix());
        let marker = Command::new("sleep")
            .arg(&marker_arg)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let state = dir.path().join(".psyduck");
        std::fs::create_dir_all(&state).unwrap();
        let secret = state.join("secret-of-the-host");
        std::fs::write(&secret, "HOST-SECRET-8d1f\n").unwrap();
        let mut blocks = ATTACKS.split("[[test]]");
        let mut suite = blocks.next().unwrap_or_default().to_owned();
        for block in blocks {
            let keep = only.is_none_or(|names| {
                names
                    .iter()
                    .any(|n| block.contains(&format!("name = \"{n}\"")))
            });
            if keep {
                suite.push_str("[[test]]");
                suite.push_str(block);
            }
        }
        if privileged {
            suite = suite.replace("[defaults]\n", "[defaults]\nprivileged = true\n");
        }
        let manifest = suite
            .replace("@PROJECT@", &dir.path().display().to_string())
            .replace("@MARKER_HEAD@", &marker_arg[..2])
            .replace("@MARKER_TAIL@", &marker_arg[2..])
            .replace("@SECRET@", &secret.display().to_string());
        std::fs::write(dir.path().join("psyduck.toml"), manifest).unwrap();
        std::fs::write(dir.path().join("syscalls.py"), SYSCALLS).unwrap();
        Arena {
            dir,
            marker,
            secret,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `psy run --message-format json` (as `user` when given); the verdict of every test.
    fn run(&self, user: Option<u32>, args: &[&str]) -> BTreeMap<String, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_psy"));
        cmd.current_dir(self.path())
            .args(["run", "--message-format", "json"])
            .args(args)
            .env("PSY_HOST_FILE", self.path().join("no-host-file.toml"))
            .env_remove("PSY_LOG");
        if let Some(uid) = user {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(uid).env("HOME", self.path());
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let verdicts: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["type"] == "test-finished")
            .map(|e| {
                (
                    e["result"]["test_id"].as_str().unwrap().to_owned(),
                    e["result"]["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(!verdicts.is_empty(), "psy ran nothing:\n{stderr}");
        eprintln!("{stderr}");
        verdicts
    }

    fn assert_host_untouched(&self, sysctl_before: &str) {
        for path in [
            PathBuf::from("/psy-escaped"),
            self.path().join("psy-escaped"),
        ] {
            assert!(!path.exists(), "an attack wrote {}", path.display());
        }
        assert_eq!(
            std::fs::read_to_string(&self.secret).unwrap(),
            "HOST-SECRET-8d1f\n"
        );
        assert_eq!(
            std::fs::read_to_string(HOST_SYSCTL).unwrap(),
            sysctl_before,
            "{HOST_SYSCTL} changed"
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        assert!(now.as_secs() > 1_700_000_000, "the host clock was set back");
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        let _ = self.marker.kill();
        let _ = self.marker.wait();
        let _ = std::fs::remove_file(self.path().join("psy-escaped"));
    }
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos % 100_000
}

fn blocked(verdicts: &BTreeMap<String, String>) {
    let escaped: Vec<_> = verdicts.iter().filter(|(_, s)| *s != "pass").collect();
    assert!(
        escaped.is_empty(),
        "attacks that were not blocked: {escaped:?}"
    );
    let expected = ATTACKS.matches("[[test]]").count();
    assert_eq!(verdicts.len(), expected, "{verdicts:?}");
}

#[test]
fn every_attack_is_blocked_as_root() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let sysctl = std::fs::read_to_string(HOST_SYSCTL).unwrap();
    let arena = Arena::new(None, false);
    blocked(&arena.run(None, &[]));
    arena.assert_host_untouched(&sysctl);
}

#[test]
fn every_attack_is_blocked_rootless() {
    if !root() {
        eprintln!("skipped: needs root (to create the user {USER})");
        return;
    }
    let uid = ensure_user();
    let sysctl = std::fs::read_to_string(HOST_SYSCTL).unwrap();
    let arena = Arena::new(None, false);
    let status = Command::new("chown")
        .args(["-R", &uid.to_string()])
        .arg(arena.path())
        .status()
        .unwrap();
    assert!(status.success());
    blocked(&arena.run(Some(uid), &[]));
    arena.assert_host_untouched(&sysctl);
}

/// The same probes see escapes when the hardening is off: they can fail. Only attacks that
/// read (never ones that would change the host) are run this way.
#[test]
fn privileged_tests_are_refused_unless_allowed_and_then_escape() {
    if !root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut names = CONTROL_ATTACKS.to_vec();
    names.push("neighbour-writes-a-secret");
    let arena = Arena::new(Some(&names), true);
    let refused = Command::new(env!("CARGO_BIN_EXE_psy"))
        .current_dir(arena.path())
        .arg("run")
        .env("PSY_HOST_FILE", arena.path().join("no-host-file.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--allow-privileged"), "{stderr}");

    let verdicts = arena.run(None, &["--allow-privileged"]);
    for name in CONTROL_ATTACKS {
        assert_eq!(
            verdicts.get(*name).map(String::as_str),
            Some("fail"),
            "{name} should escape when privileged: {verdicts:?}"
        );
    }
}

/// Attacks that only read, and that a privileged test does get away with.
const CONTROL_ATTACKS: &[&str] = &[
    "umount-proc-shows-host",
    "host-mount-namespace",
    "write-init-memory",
    "psy-state-is-masked",
    "container-root-is-not-host-root",
    "neighbour-secret-is-invisible",
];
