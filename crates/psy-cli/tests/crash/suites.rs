//! The suites the crash tests run, and the checks they share.

use crate::harness::{host_netns, Project, Psy, HANG_GUARD};
use crate::probe::{cgroup_dirs_of, cgroup_pids};
use psy_model::{RunEvent, RunId, TestStatus};
use psy_store::Store;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub(crate) const FAST: usize = 6;
pub(crate) const SLOW: usize = 4;
pub(crate) const NONE: Vec<PathBuf> = Vec::new();

pub(crate) const DEFAULTS: &str = r#"[defaults]
cpus = 0.1
memory = "64MiB"
pids = 32
tmp = "4MiB"
timeout = "10m"
"#;

pub(crate) fn test_entry(name: &str, script: &str, extra: &str) -> String {
    format!("\n[[test]]\nname = \"{name}\"\ncommand = [\"sh\", \"-c\", \"{script}\"]\n{extra}")
}

/// FAST tests that pass at once and SLOW ones that sleep (marker in argv) until killed; the odd
/// slow ones have a network of their own (a veth on the run's bridge), so a killed run leaves a
/// bridge for gc to find.
pub(crate) fn mixed_suite(marker: &str) -> String {
    let mut s = DEFAULTS.to_owned();
    for i in 0..FAST {
        s += &test_entry(&format!("fast{i}"), &format!("echo fast {i}"), "");
    }
    for i in 0..SLOW {
        let script = format!("echo {marker}; exec sleep {marker}{i}");
        let network = if i % 2 == 1 {
            "network = { egress = \"10Mbit\" }\n"
        } else {
            ""
        };
        s += &test_entry(&format!("slow{i}"), &script, network);
    }
    s
}

/// Network interfaces of psy `pid`: its bridge `psy<pid hex>` and veths `pv<pid hex>-N`.
pub(crate) fn links_of(pid: u32) -> Vec<String> {
    let (bridge, veth) = (format!("psy{pid:x}"), format!("pv{pid:x}-"));
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|l| l.file_name().to_string_lossy().into_owned())
        .filter(|name| *name == bridge || name.starts_with(&veth))
        .collect()
}

pub(crate) fn fast_passed() -> Vec<(String, TestStatus)> {
    (0..FAST)
        .map(|i| (format!("fast{i}"), TestStatus::Pass))
        .collect()
}

/// The run's verdicts in the store, by test id.
pub(crate) fn verdicts(project: &Project, run: &RunId) -> Vec<(String, TestStatus)> {
    let results = project.store().test_results(run).unwrap();
    results
        .into_iter()
        .map(|r| (r.test_id.as_str().to_owned(), r.status))
        .collect()
}

/// Starts the mixed suite and returns once every fast test finished and every slow test's
/// `sleep` runs, with the network namespaces those run in. On the way, checks that the probes
/// do see what a live run holds, so that their finding nothing later means something.
pub(crate) fn start_mixed(project: &Project, own_process_group: bool) -> (Psy, BTreeSet<String>) {
    let mut psy = project.spawn_run(own_process_group);
    psy.read_until("fast tests finished and slow tests started", |seen| {
        let count = |want: fn(&RunEvent) -> bool| seen.iter().filter(|e| want(e)).count();
        let fast_done = count(|e| {
            matches!(e, RunEvent::TestFinished { result } if result.test_id.as_str().starts_with("fast"))
        });
        let slow_started = count(|e| {
            matches!(e, RunEvent::AttemptStarted { test_id, .. } if test_id.as_str().starts_with("slow"))
        });
        fast_done == FAST && slow_started == SLOW
    });
    let deadline = Instant::now() + HANG_GUARD;
    let sleepers = loop {
        let ours = project.ours(&[psy.pid()]);
        let sleepers: Vec<_> = ours
            .into_iter()
            .filter(|p| p.cmdline.starts_with("sleep "))
            .collect();
        if sleepers.len() == SLOW {
            break sleepers;
        }
        assert!(
            Instant::now() < deadline,
            "hang guard: sleepers {sleepers:#?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let netns: BTreeSet<String> = sleepers.iter().map(|p| p.netns.clone()).collect();
    assert!(
        !netns.contains(&host_netns()) && !netns.contains(""),
        "every test has its own network namespace: {sleepers:#?}"
    );
    let cgroups = cgroup_dirs_of(psy.pid());
    assert!(
        !cgroup_pids(&cgroups).is_empty(),
        "a live run has cgroups: {cgroups:?}"
    );
    assert_eq!(
        project.scratch_dirs_of(psy.pid()).len(),
        1,
        "a live run has a scratch dir"
    );
    let inner = std::fs::read_to_string(format!("/proc/{}/mountinfo", sleepers[0].pid)).unwrap();
    assert!(
        inner.contains(".psyduck/scratch"),
        "the mount probe's pattern matches a container's mounts:\n{inner}"
    );
    (psy, netns)
}

/// Nothing of psy `pid`'s run may remain: no process, cgroup, scratch dir or host mount.
pub(crate) fn assert_nothing_left(project: &Project, pid: u32, mounts_before: &BTreeSet<String>) {
    let ours = project.ours(&[]);
    assert!(
        ours.is_empty(),
        "processes outlived psy {pid}'s run: {ours:#?}"
    );
    assert_eq!(cgroup_dirs_of(pid), NONE, "cgroups of psy {pid}");
    assert_eq!(project.scratch_dirs_of(pid), NONE, "scratch of psy {pid}");
    // The veths go with their namespaces, which the kernel tears down asynchronously once the
    // last descriptor closed: wait for that (a pinned namespace would keep them forever).
    let deadline = Instant::now() + HANG_GUARD;
    while !links_of(pid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(links_of(pid), Vec::<String>::new(), "network of psy {pid}");
    assert_eq!(
        &project.host_mounts(),
        mounts_before,
        "mounts left on the host"
    );
}

/// After psy's SIGKILL: none of its processes survive, it died of the signal, `psy gc`
/// succeeds, and nothing of its run is left.
pub(crate) fn after_sigkill_gc_leaves_nothing(
    project: &Project,
    psy: &mut Psy,
    mounts_before: &BTreeSet<String>,
) {
    let pid = psy.pid();
    let left = project.wait_ours_gone();
    assert!(
        left.is_empty(),
        "processes survived psy's SIGKILL: {left:#?}"
    );
    assert_eq!(psy.reap().code(), None, "psy died of SIGKILL");
    let gc = project.gc();
    assert!(
        gc.status.success(),
        "psy gc failed: {}",
        String::from_utf8_lossy(&gc.stderr)
    );
    assert_nothing_left(project, pid, mounts_before);
}
