//! v1 file formats against a fake cgroupfs in a temp dir.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::cgroup::IoLimits;

fn put(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        fs::write(dir.join(name), text).unwrap();
    }
}

fn get(path: PathBuf) -> String {
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The files the kernel would create in a new directory of each hierarchy.
fn kernel_files(c: V1Controller) -> &'static [(&'static str, &'static str)] {
    match c {
        V1Controller::Cpu => &[
            ("cpu.cfs_period_us", "100000\n"),
            ("cpu.cfs_quota_us", "-1\n"),
            ("cpu.shares", "1024\n"),
        ],
        V1Controller::Cpuset => &[("cpuset.cpus", "\n"), ("cpuset.mems", "\n")],
        V1Controller::Memory => &[
            ("memory.limit_in_bytes", "9223372036854771712\n"),
            ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
            ("memory.use_hierarchy", "0\n"),
        ],
        V1Controller::Pids => &[("pids.max", "max\n")],
        V1Controller::Blkio => &[
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_bps_device", ""),
            ("blkio.throttle.read_iops_device", ""),
            ("blkio.throttle.write_iops_device", ""),
            ("blkio.bfq.weight", "100\n"),
        ],
        V1Controller::Cpuacct | V1Controller::Freezer => &[],
    }
}

/// Hierarchies (cpu and cpuacct co-mounted) with root files, plus pre-made `rels` under psyduck.
fn fake_v1(root: &Path, controllers: &[&[V1Controller]], rels: &[&str]) -> Vec<V1Hierarchy> {
    let mut out = Vec::new();
    for set in controllers {
        let names: Vec<&str> = set.iter().map(|c| c.name()).collect();
        let mount = root.join(names.join(","));
        put(
            &mount,
            &[
                ("cgroup.procs", ""),
                ("cpuset.cpus", "0-3\n"),
                ("cpuset.mems", "0\n"),
            ],
        );
        for rel in std::iter::once(BASE_DIR_NAME.to_owned())
            .chain(rels.iter().map(|r| format!("{BASE_DIR_NAME}/{r}")))
        {
            put(&mount.join(&rel), &[("cgroup.procs", "")]);
            for c in *set {
                put(&mount.join(&rel), kernel_files(*c));
            }
        }
        out.push(V1Hierarchy {
            mount,
            controllers: set.to_vec(),
        });
    }
    out
}

const ALL: &[&[V1Controller]] = &[
    &[V1Controller::Cpu, V1Controller::Cpuacct],
    &[V1Controller::Cpuset],
    &[V1Controller::Memory],
    &[V1Controller::Pids],
    &[V1Controller::Freezer],
    &[V1Controller::Blkio],
];

#[test]
fn setup_prepares_the_base_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), ALL, &[]);
    let driver = V1Driver::setup(&h, "psy").unwrap();
    assert_eq!(driver.version(), CgroupVersion::V1);
    assert_eq!(get(h[1].mount.join("psyduck/cpuset.cpus")), "0-3");
    assert_eq!(get(h[1].mount.join("psyduck/cpuset.mems")), "0");
    assert_eq!(get(h[2].mount.join("psyduck/memory.use_hierarchy")), "1");
    assert_eq!(driver.missing_guarantees(), Vec::<String>::new());
}

#[test]
fn create_writes_every_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), ALL, &["psy-1-r", "psy-1-r/0"]);
    let driver = V1Driver::setup(&h, "psy").unwrap();
    let limits = CgroupLimits {
        cpu_millis: 1500,
        exclusive_cores: Some(vec![2, 3]),
        memory_bytes: 64 << 20,
        pids: 20,
        io: None,
        freezable: false,
    };
    let group = driver.create("psy-1-r/0", &limits).unwrap();
    let leaf = |i: usize, f: &str| get(h[i].mount.join("psyduck/psy-1-r/0").join(f));
    // The period keeps the kernel's default (100ms); only the quota is written.
    assert_eq!(leaf(0, "cpu.cfs_period_us").trim(), "100000");
    assert_eq!(leaf(0, "cpu.cfs_quota_us"), "150000");
    assert_eq!(leaf(0, "cpu.shares"), "1536");
    assert_eq!(leaf(1, "cpuset.cpus"), "2,3");
    assert_eq!(leaf(1, "cpuset.mems"), "0");
    assert_eq!(get(h[1].mount.join("psyduck/psy-1-r/cpuset.cpus")), "0-3");
    assert_eq!(leaf(2, "memory.limit_in_bytes"), "67108864");
    assert_eq!(leaf(2, "memory.memsw.limit_in_bytes"), "67108864");
    assert_eq!(leaf(3, "pids.max"), "20");
    // cpu+cpuacct, cpuset (exclusive cores), memory, pids: no freezer on the start path.
    let procs = group.procs_files();
    assert_eq!(procs.len(), 4);
    assert!(procs
        .iter()
        .all(|p| p.ends_with("psyduck/psy-1-r/0/cgroup.procs")));
}

#[test]
fn unlimited_and_missing_knobs_degrade() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), ALL, &["g"]);
    for f in ["cpu.cfs_period_us", "cpu.cfs_quota_us"] {
        for dir in ["psyduck", "psyduck/g"] {
            fs::remove_file(h[0].mount.join(dir).join(f)).unwrap();
        }
    }
    for dir in ["psyduck", "psyduck/g"] {
        fs::remove_file(h[2].mount.join(dir).join("memory.memsw.limit_in_bytes")).unwrap();
    }
    let driver = V1Driver::setup(&h, "psy").unwrap();
    let missing = driver.missing_guarantees().join("\n");
    assert!(missing.contains("cpu.cfs_quota_us"), "{missing}");
    assert!(missing.contains("swap is not limited"), "{missing}");
    let group = driver.create("g", &CgroupLimits::default()).unwrap();
    assert!(
        !group
            .procs_files()
            .iter()
            .any(|p| p.starts_with(&h[1].mount)),
        "no cpuset group without exclusive cores"
    );
    let leaf = |i: usize, f: &str| h[i].mount.join("psyduck/g").join(f);
    assert!(
        !leaf(0, "cpu.cfs_quota_us").exists(),
        "must not create absent knobs"
    );
    assert!(!leaf(2, "memory.memsw.limit_in_bytes").exists());
    assert_eq!(
        get(leaf(0, "cpu.shares")),
        "1024\n",
        "0 millis keeps the default"
    );
    assert_eq!(get(leaf(2, "memory.limit_in_bytes")), "-1");
    assert_eq!(get(leaf(3, "pids.max")), "max");
}

#[test]
fn missing_controllers_are_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), &[&[V1Controller::Memory]], &["g"]);
    let driver = V1Driver::setup(&h, "psy").unwrap();
    let missing = driver.missing_guarantees().join("\n");
    for what in [
        "no cpu controller",
        "no cpuset",
        "no pids",
        "no freezer",
        "no cpuacct",
        "no blkio",
    ] {
        assert!(missing.contains(what), "{what} not in {missing}");
    }
    let limits = CgroupLimits {
        cpu_millis: 500,
        exclusive_cores: Some(vec![1]),
        memory_bytes: 1 << 20,
        pids: 5,
        io: None,
        freezable: false,
    };
    let group = driver.create("g", &limits).unwrap();
    assert_eq!(
        get(h[0].mount.join("psyduck/g/memory.limit_in_bytes")),
        "1048576"
    );
    assert_eq!(group.stats().unwrap().cpu_time, None);
}

#[test]
fn stats_parse_kernel_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), ALL, &["g"]);
    let driver = V1Driver::setup(&h, "psy").unwrap();
    let group = driver.create("g", &CgroupLimits::default()).unwrap();
    put(
        &h[0].mount.join("psyduck/g"),
        &[("cpuacct.usage", "1500000000\n")],
    );
    let mem = h[2].mount.join("psyduck/g");
    put(
        &mem,
        &[
            ("memory.max_usage_in_bytes", "67100000\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            ),
            ("memory.failcnt", "0\n"),
        ],
    );
    let stats = group.stats().unwrap();
    assert_eq!(stats.cpu_time, Some(std::time::Duration::from_millis(1500)));
    assert_eq!(stats.peak_memory_bytes, Some(67_100_000));
    assert!(stats.oom_killed);

    // Pre-4.13 kernels: no oom_kill line, fall back to failcnt.
    put(
        &mem,
        &[("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n")],
    );
    assert!(!group.stats().unwrap().oom_killed);
    put(&mem, &[("memory.failcnt", "3\n")]);
    assert!(group.stats().unwrap().oom_killed);

    put(&mem, &[("memory.max_usage_in_bytes", "lots\n")]);
    let err = group.stats().unwrap_err().to_string();
    assert!(err.contains("memory.max_usage_in_bytes"), "{err}");
}

fn io(device: (u32, u32)) -> IoLimits {
    IoLimits {
        write_bps: Some(10 << 20),
        read_iops: Some(100),
        weight: Some(200),
        ..IoLimits::measure_only(device)
    }
}

#[test]
fn io_limits_get_a_blkio_dir_and_replace_stale_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), ALL, &["g"]);
    let driver = V1Driver::setup(&h, "psy").unwrap();
    let leaf = |f: &str| h[5].mount.join("psyduck/g").join(f);
    // A reused group still limits another device, and reads on this one.
    put(
        &h[5].mount.join("psyduck/g"),
        &[
            ("blkio.throttle.write_bps_device", "8:0 5\n"),
            ("blkio.throttle.read_bps_device", "254:0 7\n"),
        ],
    );
    let limits = CgroupLimits {
        io: Some(io((254, 0))),
        ..Default::default()
    };
    let group = driver.create("g", &limits).unwrap();
    assert_eq!(group.procs_files().len(), 4, "cpu, memory, pids, blkio");
    assert!(group
        .procs_files()
        .iter()
        .any(|p| p.starts_with(&h[5].mount)));
    assert_eq!(
        get(leaf("blkio.throttle.write_bps_device")),
        "254:0 10485760"
    );
    assert_eq!(get(leaf("blkio.throttle.read_iops_device")), "254:0 100");
    assert_eq!(get(leaf("blkio.throttle.read_bps_device")), "254:0 0");
    assert_eq!(get(leaf("blkio.throttle.write_iops_device")), "");
    assert_eq!(get(leaf("blkio.bfq.weight")), "200");
    // Clearing: every listed rule is deleted (0).
    put(
        &h[5].mount.join("psyduck/g"),
        &[("blkio.throttle.write_bps_device", "254:0 10485760\n")],
    );
    group.set_limits(&CgroupLimits::default()).unwrap();
    assert_eq!(get(leaf("blkio.throttle.write_bps_device")), "254:0 0");
}

#[test]
fn io_on_a_group_made_without_blkio_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), ALL, &["g"]);
    let driver = V1Driver::setup(&h, "psy").unwrap();
    let group = driver.create("g", &CgroupLimits::default()).unwrap();
    assert!(!group
        .procs_files()
        .iter()
        .any(|p| p.starts_with(&h[5].mount)));
    let limits = CgroupLimits {
        io: Some(io((254, 0))),
        ..Default::default()
    };
    let err = group.set_limits(&limits).unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::MissingController {
                controller: "blkio",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("psyduck/g"), "{err}");
    assert_eq!(group.stats().unwrap().io_write_bytes, None);
}

#[test]
fn io_stats_and_missing_io_knobs() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), ALL, &["g"]);
    for dir in ["psyduck", "psyduck/g"] {
        fs::remove_file(h[5].mount.join(dir).join("blkio.bfq.weight")).unwrap();
    }
    let driver = V1Driver::setup(&h, "psy").unwrap();
    let missing = driver.missing_guarantees().join("\n");
    assert!(missing.contains("io weight: no blkio.weight"), "{missing}");
    let limits = CgroupLimits {
        io: Some(io((254, 0))),
        ..Default::default()
    };
    let group = driver.create("g", &limits).unwrap();
    assert!(!h[5].mount.join("psyduck/g/blkio.bfq.weight").exists());
    assert_eq!(group.stats().unwrap().io_write_bytes, None, "no stat files");
    let dir = h[5].mount.join("psyduck/g");
    put(
        &dir,
        &[
            (
                "blkio.throttle.io_service_bytes",
                "254:0 Read 4096\n254:0 Write 999\nTotal 5095\n",
            ),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "254:0 Read 8192\n254:0 Write 31457280\n254:0 Total 31465472\nTotal 31465472\n",
            ),
            (
                "blkio.throttle.io_serviced",
                "254:0 Read 2\n254:0 Write 30\nTotal 32\n",
            ),
        ],
    );
    let stats = group.stats().unwrap();
    // The recursive file wins where both exist.
    assert_eq!(stats.io_read_bytes, Some(8192));
    assert_eq!(stats.io_write_bytes, Some(31_457_280));
    assert_eq!(stats.io_read_ops, Some(2));
    assert_eq!(stats.io_write_ops, Some(30));
}

#[test]
fn gc_removes_only_stale_groups_of_our_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), ALL, &[]);
    let driver = V1Driver::setup(&h, "psy").unwrap();
    for hier in &h {
        for rel in ["psy-10-a/0/x", "psy-11-b/0", "other-10-c", "psy-10"] {
            fs::create_dir_all(hier.mount.join("psyduck").join(rel)).unwrap();
        }
    }
    let report = driver.gc(&|o| o.pid == 11).unwrap();
    assert_eq!(report.removed, vec!["psy-10-a"]);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    for hier in &h {
        let base = hier.mount.join("psyduck");
        assert!(!base.join("psy-10-a").exists());
        for kept in ["psy-11-b/0", "other-10-c", "psy-10"] {
            assert!(base.join(kept).exists(), "{kept}");
        }
    }
}

#[test]
fn create_rejects_bad_names() {
    let tmp = tempfile::tempdir().unwrap();
    let h = fake_v1(tmp.path(), ALL, &[]);
    let driver = V1Driver::setup(&h, "psy").unwrap();
    let err = driver
        .create("../escape", &CgroupLimits::default())
        .unwrap_err();
    assert!(matches!(err, CgroupError::InvalidName { .. }), "{err}");
    // A name equal to a cgroupfs file is refused rather than written through.
    let err = driver
        .create("cgroup.procs", &CgroupLimits::default())
        .unwrap_err();
    assert!(err.to_string().contains("cgroup.procs"), "{err}");
}
