use std::fs;
use std::path::Path;

use super::*;

/// A fake `/proc/self` plus a temp dir holding the "mounts".
struct FakeHost {
    tmp: tempfile::TempDir,
}

impl FakeHost {
    fn new() -> Self {
        let host = FakeHost {
            tmp: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(host.proc().join("self")).unwrap();
        host
    }
    fn proc(&self) -> std::path::PathBuf {
        self.tmp.path().join("proc")
    }
    fn mnt(&self, rel: &str) -> std::path::PathBuf {
        let p = self.tmp.path().join("mnt").join(rel);
        fs::create_dir_all(&p).unwrap();
        p
    }
    fn write(&self, file: &str, text: &str) {
        fs::write(self.proc().join("self").join(file), text).unwrap();
    }
    fn uid(&self, uid: u32) {
        self.write(
            "status",
            &format!("Name:\tpsy\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t0\t0\t0\t0\n"),
        );
    }
    fn mountinfo(&self, lines: &[(&str, &Path, &str, &str)]) {
        let text: String = lines
            .iter()
            .enumerate()
            .map(|(i, (root, point, fstype, opts))| {
                format!(
                    "{} 31 0:{i} {root} {} rw,relatime shared:9 - {fstype} {fstype} {opts}\n",
                    40 + i,
                    point.display()
                )
            })
            .collect();
        let other = "25 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n";
        self.write("mountinfo", &format!("{other}{text}"));
    }
}

#[test]
fn hybrid_v1_as_root_picks_v1_with_comounted_controllers() {
    let host = FakeHost::new();
    let cpu = host.mnt("cpu,cpuacct");
    let mem = host.mnt("memory");
    let sysd = host.mnt("systemd");
    let dev = host.mnt("devices");
    let unified = host.mnt("unified");
    host.mountinfo(&[
        ("/", &cpu, "cgroup", "rw,cpu,cpuacct"),
        ("/", &mem, "cgroup", "rw,memory"),
        ("/", &mem, "cgroup", "rw,memory"), // a bind mount repeats the hierarchy
        ("/", &sysd, "cgroup", "rw,xattr,name=systemd"),
        ("/", &dev, "cgroup", "rw,devices"),
        ("/", &unified, "cgroup2", "rw,nsdelegate"),
    ]);
    host.uid(0);
    let layout = inspect(&host.proc()).unwrap();
    assert_eq!(layout.version(), Some(CgroupVersion::V1));
    let Layout::V1 { hierarchies } = layout else {
        panic!("{layout:?}")
    };
    assert_eq!(
        hierarchies,
        vec![
            V1Hierarchy {
                mount: cpu,
                controllers: vec![V1Controller::Cpu, V1Controller::Cpuacct]
            },
            V1Hierarchy {
                mount: mem,
                controllers: vec![V1Controller::Memory]
            },
        ]
    );
}

#[test]
fn v1_as_user_is_unavailable_with_reason() {
    let host = FakeHost::new();
    let mem = host.mnt("memory");
    host.mountinfo(&[("/", &mem, "cgroup", "rw,memory")]);
    host.uid(1000);
    let d = detect(&host.proc(), "psy").unwrap();
    assert_eq!(d.layout.version(), None);
    assert!(d.driver.is_none());
    let reason = d.reason.unwrap();
    assert!(
        reason.contains("v1 needs root") && reason.contains("1000"),
        "{reason}"
    );
}

#[test]
fn pure_v2_as_root_uses_the_mount() {
    let host = FakeHost::new();
    let root = host.mnt("cgroup");
    host.mountinfo(&[("/", &root, "cgroup2", "rw,nsdelegate,memory_recursiveprot")]);
    host.uid(0);
    assert_eq!(
        inspect(&host.proc()).unwrap(),
        Layout::V2Root { mount: root }
    );
}

#[test]
fn v2_user_gets_own_delegated_cgroup() {
    let host = FakeHost::new();
    let root = host.mnt("cgroup");
    let own_rel = "user.slice/user-1000.slice/user@1000.service/app.slice/psy.scope";
    let own = host.mnt(&format!("cgroup/{own_rel}"));
    for f in ["cgroup.procs", "cgroup.subtree_control"] {
        fs::write(own.join(f), "").unwrap();
    }
    host.mountinfo(&[("/", &root, "cgroup2", "rw")]);
    host.uid(1000);
    host.write("cgroup", &format!("0::/{own_rel}\n"));
    assert_eq!(
        inspect(&host.proc()).unwrap(),
        Layout::V2Delegated { own: own.clone() }
    );

    // Once setup moved us into <own>/supervisor, detection still names <own>.
    host.write("cgroup", &format!("0::/{own_rel}/{SUPERVISOR_LEAF}\n"));
    assert_eq!(inspect(&host.proc()).unwrap(), Layout::V2Delegated { own });
}

#[test]
fn v2_user_without_delegation_is_unavailable() {
    let host = FakeHost::new();
    let root = host.mnt("cgroup");
    host.mountinfo(&[("/", &root, "cgroup2", "rw")]);
    host.uid(1000);
    // The cgroup files do not exist (not writable), whoever runs the test.
    host.write("cgroup", "0::/user.slice/session-3.scope\n");
    let layout = inspect(&host.proc()).unwrap();
    let reason = layout.unavailable_reason().unwrap();
    assert!(
        reason.contains("session-3.scope") && reason.contains("Delegate=yes"),
        "{reason}"
    );
}

#[test]
fn v2_mount_of_a_subtree_maps_own_path() {
    let host = FakeHost::new();
    let root = host.mnt("cgroup");
    let own = host.mnt("cgroup/job");
    for f in ["cgroup.procs", "cgroup.subtree_control"] {
        fs::write(own.join(f), "").unwrap();
    }
    host.mountinfo(&[("/docker/abc", &root, "cgroup2", "rw")]);
    host.uid(1000);
    host.write("cgroup", "0::/docker/abc/job\n");
    assert_eq!(inspect(&host.proc()).unwrap(), Layout::V2Delegated { own });
    host.write("cgroup", "0::/docker/abcd/job\n");
    let layout = inspect(&host.proc()).unwrap();
    assert!(
        layout.unavailable_reason().unwrap().contains("outside"),
        "{layout:?}"
    );
}

#[test]
fn no_cgroupfs_at_all() {
    let host = FakeHost::new();
    host.mountinfo(&[]);
    host.uid(0);
    let layout = inspect(&host.proc()).unwrap();
    assert_eq!(
        layout.unavailable_reason(),
        Some("no cgroup filesystem is mounted")
    );
}

#[test]
fn mountinfo_escapes_and_errors_name_the_file() {
    let path = Path::new("/proc/self/mountinfo");
    let text = "41 31 0:38 / /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n";
    let mounts = parse_mountinfo(path, text).unwrap();
    assert_eq!(mounts[0].mount_point, Path::new("/sys/fs/my cgroup"));
    let err = parse_mountinfo(path, "garbage line\n").unwrap_err();
    assert!(err.to_string().contains("/proc/self/mountinfo"), "{err}");

    let host = FakeHost::new();
    host.mountinfo(&[]);
    host.write("status", "Name:\tpsy\n");
    let err = inspect(&host.proc()).unwrap_err();
    assert!(err.to_string().contains("self/status"), "{err}");
}
