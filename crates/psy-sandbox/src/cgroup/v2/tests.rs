//! v2 file formats and setup against a fake cgroupfs in a temp dir.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::cgroup::detect::SUPERVISOR_LEAF;
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

/// Files of a non-root v2 cgroup whose parent enabled cpu, cpuset, memory and pids.
const GROUP_FILES: &[(&str, &str)] = &[
    ("cgroup.procs", ""),
    ("cgroup.controllers", "cpuset cpu io memory pids\n"),
    ("cgroup.subtree_control", "\n"),
    ("cgroup.kill", ""),
    ("cgroup.freeze", "0\n"),
    ("cpu.max", "max 100000\n"),
    ("cpu.weight", "100\n"),
    ("cpu.stat", "usage_usec 0\n"),
    ("cpuset.cpus", "\n"),
    ("memory.max", "max\n"),
    ("memory.swap.max", "max\n"),
    ("memory.oom.group", "0\n"),
    ("memory.peak", "0\n"),
    ("pids.max", "max\n"),
    ("io.max", ""),
    ("io.weight", "default 100\n"),
];

fn fake_root(tmp: &Path) -> (PathBuf, PathBuf) {
    let mount = tmp.join("cgroup");
    put(
        &mount,
        &[
            (
                "cgroup.controllers",
                "cpuset cpu io memory hugetlb pids rdma misc\n",
            ),
            ("cgroup.subtree_control", "\n"),
        ],
    );
    let base = mount.join("psyduck");
    put(&base, GROUP_FILES);
    (mount, base)
}

#[test]
fn root_setup_enables_controllers_at_both_levels() {
    let tmp = tempfile::tempdir().unwrap();
    let (mount, base) = fake_root(tmp.path());
    let driver = V2Driver::setup_root(&mount, &base, "psy").unwrap();
    assert_eq!(driver.version(), CgroupVersion::V2);
    assert_eq!(
        get(mount.join("cgroup.subtree_control")),
        "+cpu +cpuset +memory +pids +io"
    );
    assert_eq!(
        get(base.join("cgroup.subtree_control")),
        "+cpu +cpuset +memory +pids +io"
    );
    assert_eq!(driver.missing_guarantees(), Vec::<String>::new());
}

#[test]
fn create_writes_every_limit_including_intermediate_delegation() {
    let tmp = tempfile::tempdir().unwrap();
    let (mount, base) = fake_root(tmp.path());
    put(&base.join("psy-1-r"), GROUP_FILES);
    put(&base.join("psy-1-r/0"), GROUP_FILES);
    let driver = V2Driver::setup_root(&mount, &base, "psy").unwrap();
    let limits = CgroupLimits {
        cpu_millis: 1500,
        exclusive_cores: Some(vec![2, 3]),
        memory_bytes: 64 << 20,
        pids: 20,
        io: None,
        freezable: false,
    };
    let group = driver.create("psy-1-r/0", &limits).unwrap();
    assert_eq!(
        get(base.join("psy-1-r/cgroup.subtree_control")),
        "+cpu +cpuset +memory +pids +io"
    );
    let leaf = |f: &str| get(base.join("psy-1-r/0").join(f));
    assert_eq!(leaf("cpu.max"), "150000 100000");
    assert_eq!(leaf("cpu.weight"), "150");
    assert_eq!(leaf("cpuset.cpus"), "2,3");
    assert_eq!(leaf("memory.max"), "67108864");
    assert_eq!(leaf("memory.swap.max"), "0");
    assert_eq!(leaf("memory.oom.group"), "1");
    assert_eq!(leaf("pids.max"), "20");
    assert_eq!(
        group.procs_files(),
        vec![base.join("psy-1-r/0/cgroup.procs")]
    );
}

#[test]
fn zero_means_unlimited_and_optional_knobs_may_be_absent() {
    let tmp = tempfile::tempdir().unwrap();
    let (mount, base) = fake_root(tmp.path());
    for f in [
        "memory.swap.max",
        "memory.peak",
        "cgroup.kill",
        "cgroup.freeze",
    ] {
        fs::remove_file(base.join(f)).unwrap();
    }
    let leaf = base.join("g");
    put(&leaf, GROUP_FILES);
    for f in ["memory.swap.max", "memory.oom.group"] {
        fs::remove_file(leaf.join(f)).unwrap();
    }
    let driver = V2Driver::setup_root(&mount, &base, "psy").unwrap();
    let missing = driver.missing_guarantees().join("\n");
    for what in ["swap is not limited", "memory.peak", "cgroup.kill"] {
        assert!(missing.contains(what), "{what} not in {missing}");
    }
    driver.create("g", &CgroupLimits::default()).unwrap();
    assert_eq!(get(leaf.join("cpu.max")), "max 100000");
    assert_eq!(
        get(leaf.join("cpu.weight")),
        "100\n",
        "0 millis keeps the default"
    );
    assert_eq!(
        get(leaf.join("cpuset.cpus")),
        "\n",
        "no cores inherits the parent's"
    );
    assert_eq!(get(leaf.join("memory.max")), "max");
    assert_eq!(get(leaf.join("pids.max")), "max");
    assert!(
        !leaf.join("memory.swap.max").exists(),
        "must not create absent knobs"
    );
}

#[test]
fn delegated_setup_vacates_own_cgroup_first() {
    let tmp = tempfile::tempdir().unwrap();
    let own = tmp.path().join("user.slice/psy.scope");
    put(&own, GROUP_FILES);
    // systemd delegated only what user@.service has: no cpuset.
    put(&own, &[("cgroup.controllers", "cpu memory pids\n")]);
    put(&own.join(SUPERVISOR_LEAF), &[("cgroup.procs", "")]);
    // psy's zygote, forked before the driver exists, is still in `own`.
    put(&own, &[("cgroup.procs", "4243\n")]);
    let driver = V2Driver::setup_delegated(&own, 4242, "psy").unwrap();
    assert_eq!(
        get(own.join(SUPERVISOR_LEAF).join("cgroup.procs")),
        "4243",
        "the last write moves the zygote after psy"
    );
    assert_eq!(
        get(own.join("cgroup.subtree_control")),
        "+cpu +memory +pids"
    );
    let missing = driver.missing_guarantees().join("\n");
    assert!(
        missing.contains("exclusive cores: cpuset controller not enabled"),
        "{missing}"
    );
    assert!(
        missing.contains("cpuset controller not offered"),
        "{missing}"
    );

    // Groups go directly under the delegated cgroup; cores are skipped without cpuset.
    put(&own.join("g"), GROUP_FILES);
    let limits = CgroupLimits {
        exclusive_cores: Some(vec![1]),
        ..CgroupLimits::from_resources(&psy_model::Resources::default(), None)
    };
    driver.create("g", &limits).unwrap();
    assert_eq!(get(own.join("g/cpuset.cpus")), "\n");
    assert_eq!(get(own.join("g/memory.max")), (512u64 << 20).to_string());
    assert_eq!(get(own.join("g/cpu.max")), "100000 100000");
}

#[test]
fn stats_parse_kernel_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let (mount, base) = fake_root(tmp.path());
    let leaf = base.join("g");
    put(&leaf, GROUP_FILES);
    let driver = V2Driver::setup_root(&mount, &base, "psy").unwrap();
    let group = driver.create("g", &CgroupLimits::default()).unwrap();
    // No nr_periods/throttled keys (cpu controller off): still parses.
    put(
        &leaf,
        &[
            (
                "cpu.stat",
                "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
            ),
            ("memory.peak", "1234\n"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 1\n",
            ),
        ],
    );
    let stats = group.stats().unwrap();
    assert_eq!(stats.cpu_time, Some(std::time::Duration::from_millis(2500)));
    assert_eq!(stats.peak_memory_bytes, Some(1234));
    assert!(stats.oom_killed);

    fs::remove_file(leaf.join("memory.peak")).unwrap();
    put(
        &leaf,
        &[("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")],
    );
    let stats = group.stats().unwrap();
    assert_eq!(
        stats.peak_memory_bytes, None,
        "pre-5.19 kernels have no memory.peak"
    );
    assert!(!stats.oom_killed);
}

#[test]
fn gc_removes_only_stale_groups_of_our_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let (mount, base) = fake_root(tmp.path());
    let driver = V2Driver::setup_root(&mount, &base, "psy").unwrap();
    for rel in ["psy-10-a/0", "psy-11-b/0", "psyx-10-c", SUPERVISOR_LEAF] {
        fs::create_dir_all(base.join(rel)).unwrap();
    }
    let report = driver.gc(&|o| o.pid == 11).unwrap();
    assert_eq!(report.removed, vec!["psy-10-a"]);
    assert!(!base.join("psy-10-a").exists());
    for kept in ["psy-11-b/0", "psyx-10-c", SUPERVISOR_LEAF] {
        assert!(base.join(kept).exists(), "{kept}");
    }
}

fn io_limits() -> IoLimits {
    IoLimits {
        read_bps: Some(1 << 20),
        write_iops: Some(50),
        weight: Some(300),
        ..IoLimits::measure_only((254, 0))
    }
}

#[test]
fn io_limits_land_in_io_max_and_weight() {
    let tmp = tempfile::tempdir().unwrap();
    let (mount, base) = fake_root(tmp.path());
    let leaf = base.join("g");
    put(&leaf, GROUP_FILES);
    // A reused group still throttles another device.
    put(
        &leaf,
        &[("io.max", "8:0 rbps=max wbps=5 riops=max wiops=max\n")],
    );
    let driver = V2Driver::setup_root(&mount, &base, "psy").unwrap();
    let limits = CgroupLimits {
        io: Some(io_limits()),
        ..Default::default()
    };
    let group = driver.create("g", &limits).unwrap();
    assert_eq!(
        get(leaf.join("io.max")),
        "254:0 rbps=1048576 wbps=max riops=max wiops=50"
    );
    assert_eq!(get(leaf.join("io.weight")), "default 300");
    put(
        &leaf,
        &[("io.max", "254:0 rbps=1048576 wbps=max riops=max wiops=50\n")],
    );
    group.set_limits(&CgroupLimits::default()).unwrap();
    assert_eq!(
        get(leaf.join("io.max")),
        "254:0 rbps=max wbps=max riops=max wiops=max",
        "None clears the old entry"
    );
}

#[test]
fn io_stats_and_missing_io_knobs() {
    let tmp = tempfile::tempdir().unwrap();
    let (mount, base) = fake_root(tmp.path());
    fs::remove_file(base.join("io.weight")).unwrap();
    let leaf = base.join("g");
    put(&leaf, GROUP_FILES);
    fs::remove_file(leaf.join("io.weight")).unwrap();
    let driver = V2Driver::setup_root(&mount, &base, "psy").unwrap();
    let missing = driver.missing_guarantees().join("\n");
    assert!(missing.contains("io weight: no io.weight"), "{missing}");
    let limits = CgroupLimits {
        io: Some(io_limits()),
        ..Default::default()
    };
    let group = driver.create("g", &limits).unwrap();
    assert!(
        !leaf.join("io.weight").exists(),
        "must not create absent knobs"
    );
    assert_eq!(group.stats().unwrap().io_read_bytes, None, "no io.stat");
    put(
        &leaf,
        &[(
            "io.stat",
            "254:0 rbytes=4096 wbytes=31457280 rios=1 wios=30 dbytes=0 dios=0\n",
        )],
    );
    let stats = group.stats().unwrap();
    assert_eq!(stats.io_read_bytes, Some(4096));
    assert_eq!(stats.io_write_bytes, Some(31_457_280));
    assert_eq!(stats.io_read_ops, Some(1));
    assert_eq!(stats.io_write_ops, Some(30));
}
