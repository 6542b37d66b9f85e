//! The decision on made-up hosts, the drivers' wording, and the host probes on temp files.

use super::*;
use psy_model::{IoRequest, NetworkRequest};

/// A root host on cgroup v1 with everything: user namespace slots, loop devices, bridge.
fn full_root_v1() -> HostFacts {
    HostFacts {
        root: true,
        cgroups: Ok(CgroupGaps {
            version: Some(CgroupVersion::V1),
            ..CgroupGaps::default()
        }),
        confinement: Confinement::SlotUserns,
        loop_devices: Ok(()),
        mkfs: Ok(()),
        network: Ok(()),
        scratch_device: Ok(()),
    }
}

/// psy-ci on this kind of host: cgroup v1 needs root, a nested user namespace.
fn rootless_v1() -> HostFacts {
    HostFacts {
        root: false,
        cgroups: Err("cgroup v1 needs root and this process runs as uid 1001".into()),
        confinement: Confinement::NestedUserns,
        loop_devices: Ok(()),
        mkfs: Ok(()),
        network: Err("it needs root (the run's bridge is made by root)".into()),
        scratch_device: Ok(()),
    }
}

fn asked(resources: &Resources) -> Asked<'_> {
    Asked {
        resources,
        exclusive_cores: false,
        volumes: 0,
        privileged: false,
    }
}

/// The messages of the gaps of `asked` on `facts`.
fn texts(facts: &HostFacts, asked: &Asked<'_>) -> Vec<String> {
    unenforced(facts, asked)
        .iter()
        .map(Unenforced::to_string)
        .collect()
}

fn kinds(gaps: &[Unenforced]) -> Vec<Guarantee> {
    gaps.iter().map(|g| g.guarantee).collect()
}

/// Every guarantee there is.
fn everything() -> Resources {
    Resources {
        disk_bytes: Some(1 << 30),
        io: Some(IoRequest {
            write_bps: Some(1 << 20),
            weight: Some(100),
            ..IoRequest::default()
        }),
        network: Some(NetworkRequest::default()),
        ..Resources::default()
    }
}

#[test]
fn a_full_root_host_enforces_everything() {
    let r = everything();
    let all = Asked {
        exclusive_cores: true,
        volumes: 2,
        ..asked(&r)
    };
    assert_eq!(unenforced(&full_root_v1(), &all), vec![]);
}

#[test]
fn rootless_v1_enforces_no_cgroup_limit_and_names_why() {
    let r = Resources::default();
    let gaps = unenforced(&rootless_v1(), &asked(&r));
    assert_eq!(
        kinds(&gaps),
        [
            Guarantee::Cpu,
            Guarantee::Memory,
            Guarantee::Pids,
            Guarantee::Confinement
        ]
    );
    assert_eq!(
        gaps[1].to_string(),
        "memory limits are not enforced: cgroup v1 needs root and this process runs as uid 1001"
    );
    assert!(gaps[3].why.starts_with("rootless"), "{}", gaps[3]);
    // Nothing asked, nothing refused (but confinement, which every test gets).
    let none = Resources {
        cpu_millis: 0,
        memory_bytes: 0,
        pids: 0,
        ..Resources::default()
    };
    assert_eq!(
        kinds(&unenforced(&rootless_v1(), &asked(&none))),
        [Guarantee::Confinement]
    );
}

#[test]
fn root_only_requests_need_root_without_it() {
    let r = everything();
    let all = Asked {
        volumes: 1,
        privileged: true,
        ..asked(&r)
    };
    let gaps = unenforced(&rootless_v1(), &all);
    let text = texts(&rootless_v1(), &all);
    assert!(
        text.contains(&"`disk` needs root (a loop device)".to_owned()),
        "{text:?}"
    );
    assert!(text.contains(&"`[[test.volume]]` needs root (a loop device)".to_owned()));
    assert!(text.contains(&"`network` it needs root (the run's bridge is made by root)".to_owned()));
    // A privileged test asks for no confinement.
    assert!(!kinds(&gaps).contains(&Guarantee::Confinement));
}

#[test]
fn missing_controllers_take_away_their_own_guarantees_only() {
    let missing = [
        "cpu limits: kernel lacks CFS bandwidth control (no cpu.cfs_quota_us); only proportional cpu.shares apply",
        "exclusive cores: no cpuset controller",
        "process limits: no pids controller",
        "io limits: no blkio controller",
        "reliable kill: no freezer controller; a fast-forking test may outlive one kill pass",
        "cpu time stats: no cpuacct controller",
    ]
    .map(String::from);
    let facts = HostFacts {
        cgroups: Ok(CgroupGaps::classify(CgroupVersion::V1, &missing, false)),
        ..full_root_v1()
    };
    let r = everything();
    let gaps = unenforced(
        &facts,
        &Asked {
            exclusive_cores: true,
            ..asked(&r)
        },
    );
    assert_eq!(
        kinds(&gaps),
        [
            Guarantee::Cpu,
            Guarantee::ExclusiveCores,
            Guarantee::Pids,
            Guarantee::Io
        ]
    );
    assert_eq!(
        gaps[1].to_string(),
        "exclusive cores are not enforced: no cpuset controller"
    );
    // Without exclusive cores or io, only what was asked.
    let plain = Resources::default();
    assert_eq!(
        kinds(&unenforced(&facts, &asked(&plain))),
        [Guarantee::Cpu, Guarantee::Pids]
    );
}

#[test]
fn unlimited_swap_matters_only_with_swap_on() {
    let missing = ["memory limits: swap is not limited (no memory.memsw.limit_in_bytes; boot with swapaccount=1)".to_owned()];
    let r = Resources::default();
    for (swap_on, expected) in [(false, vec![]), (true, vec![Guarantee::Memory])] {
        let facts = HostFacts {
            cgroups: Ok(CgroupGaps::classify(CgroupVersion::V1, &missing, swap_on)),
            ..full_root_v1()
        };
        assert_eq!(kinds(&unenforced(&facts, &asked(&r))), expected);
    }
}

#[test]
fn io_weight_needs_its_own_knob() {
    let missing = ["io weight: no blkio.weight or blkio.bfq.weight (no CFQ/BFQ scheduler); only io throttles apply".to_owned()];
    let facts = HostFacts {
        cgroups: Ok(CgroupGaps::classify(CgroupVersion::V1, &missing, false)),
        ..full_root_v1()
    };
    let mut r = Resources {
        io: Some(IoRequest {
            read_bps: Some(1 << 20),
            ..IoRequest::default()
        }),
        ..Resources::default()
    };
    assert_eq!(unenforced(&facts, &asked(&r)), vec![]);
    r.io = Some(IoRequest {
        weight: Some(200),
        ..IoRequest::default()
    });
    assert_eq!(
        kinds(&unenforced(&facts, &asked(&r))),
        [Guarantee::IoWeight]
    );
}

#[test]
fn io_on_v1_needs_a_loop_device_and_on_v2_a_block_device() {
    let r = Resources {
        io: Some(IoRequest {
            write_bps: Some(1 << 20),
            ..IoRequest::default()
        }),
        ..Resources::default()
    };
    let no_loop = HostFacts {
        loop_devices: Err("/dev/loop-control: No such file or directory".into()),
        scratch_device: Err("not a block device".into()),
        ..full_root_v1()
    };
    assert_eq!(
        texts(&no_loop, &asked(&r)),
        ["no loop device for `io` on cgroup v1: /dev/loop-control: No such file or directory"]
    );
    let v2 = HostFacts {
        cgroups: Ok(CgroupGaps {
            version: Some(CgroupVersion::V2),
            ..CgroupGaps::default()
        }),
        ..no_loop
    };
    assert_eq!(
        texts(&v2, &asked(&r)),
        ["`io` needs a block device under the scratch area: not a block device"]
    );
}

#[test]
fn disks_and_volumes_need_a_loop_device_and_mkfs() {
    let r = Resources {
        disk_bytes: Some(1 << 30),
        ..Resources::default()
    };
    let with_volume = Asked {
        volumes: 1,
        ..asked(&r)
    };
    let no_mkfs = HostFacts {
        mkfs: Err("`mkfs.ext4` is not on PATH".into()),
        ..full_root_v1()
    };
    assert_eq!(
        texts(&no_mkfs, &with_volume),
        [
            "`disk` needs e2fsprogs: `mkfs.ext4` is not on PATH",
            "`[[test.volume]]` needs e2fsprogs: `mkfs.ext4` is not on PATH"
        ]
    );
}

#[test]
fn confinement_weaker_than_a_slot_user_namespace_is_a_gap() {
    let r = Resources::default();
    let docker = HostFacts {
        confinement: Confinement::DockerCaps,
        ..full_root_v1()
    };
    assert_eq!(
        texts(&docker, &asked(&r)),
        ["user namespaces unavailable: tests would run as host root with Docker's capabilities"]
    );
    let privileged = Asked {
        privileged: true,
        ..asked(&r)
    };
    assert_eq!(unenforced(&docker, &privileged), vec![]);
}

/// The drivers' own wording (not a copy of it) sorts into the right areas: a v1 host with
/// no hierarchy and a v2 root offering no controller lack every cgroup guarantee.
#[test]
fn classifies_what_the_drivers_report() {
    let v1 = cgroup::setup(
        &cgroup::Layout::V1 {
            hierarchies: vec![],
        },
        "psy",
    )
    .unwrap()
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for dir in [tmp.path().to_path_buf(), tmp.path().join("psyduck")] {
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["cgroup.controllers", "cgroup.subtree_control"] {
            std::fs::write(dir.join(file), "").unwrap();
        }
    }
    let v2 = cgroup::setup(
        &cgroup::Layout::V2Root {
            mount: tmp.path().to_path_buf(),
        },
        "psy",
    )
    .unwrap()
    .unwrap();
    for driver in [v1, v2] {
        let gaps = CgroupGaps::classify(driver.version(), &driver.missing_guarantees(), true);
        for (area, lines) in [
            ("cpu", &gaps.cpu),
            ("cpuset", &gaps.cpuset),
            ("memory", &gaps.memory),
            ("pids", &gaps.pids),
            ("io", &gaps.io),
        ] {
            assert!(!lines.is_empty(), "{area} in {gaps:?}");
        }
    }
}

#[test]
fn host_probes_read_the_files_they_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let swaps = dir.path().join("swaps");
    std::fs::write(&swaps, "Filename\tType\tSize\tUsed\tPriority\n").unwrap();
    assert!(!swap_on(&swaps));
    std::fs::write(
        &swaps,
        "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1024 0 -2\n",
    )
    .unwrap();
    assert!(swap_on(&swaps));
    assert!(loop_devices(&swaps)
        .unwrap_err()
        .contains("not the loop control device"));
    assert!(loop_devices(&dir.path().join("none")).is_err());
    assert!(loop_devices(Path::new("/dev/null")).is_err());
    // A scratch area not made yet is judged by its nearest existing parent.
    assert_eq!(
        scratch_device(&dir.path().join("not/yet")).is_ok(),
        scratch_device(dir.path()).is_ok()
    );
}
