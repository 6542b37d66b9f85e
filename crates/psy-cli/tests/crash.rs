//! Root-only crash tests of the `psy` binary: a killed, interrupted or timed-out run leaks no
//! process, cgroup, scratch directory, mount or network namespace, and loses no finished result.
//!
//! Every psy started here has a unique `CRASHTEST_TAG` in its environment, which its containers
//! (clones of psy) and their tests inherit, and every long-lived test has a unique marker in
//! its argv (`sleep 1000.<digits>`), so leftovers are found in /proc without ever matching
//! another user's processes. Waits are polls under a generous hang guard: no assertion depends
//! on how fast the machine is.

#[path = "crash/harness.rs"]
mod harness;
#[path = "crash/probe.rs"]
mod probe;
#[path = "crash/suites.rs"]
mod suites;

use harness::Project;
use probe::{cgroup_dirs_of, cgroup_pids, netns_mounts};
use psy_model::{RunEvent, RunId, TestStatus};
use psy_store::{RunState, Store};
use std::process::ExitStatus;
use suites::{
    assert_nothing_left, fast_passed, mixed_suite, start_mixed, test_entry, verdicts, DEFAULTS,
    FAST, SLOW,
};

macro_rules! require_root {
    () => {
        // SAFETY: trivial getter.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

#[test]
fn sigkill_mid_run_leaks_nothing_and_keeps_finished_results() {
    require_root!();
    let project = Project::new(mixed_suite);
    let mounts_before = project.host_mounts();
    let named_netns_before = probe::named_netns();
    let (mut psy, netns) = start_mixed(&project, false);
    let (pid, run) = (psy.pid(), psy.run_id());
    assert_eq!(
        project.host_mounts(),
        mounts_before,
        "container mounts stay inside"
    );

    psy.signal(libc::SIGKILL, false);
    psy.wait_exit();
    let left = project.wait_ours_gone();
    assert!(
        left.is_empty(),
        "processes survived psy's SIGKILL: {left:#?}"
    );
    // Only the run's processes (psy's pool, container inits, tests) or a bind mount could keep
    // its network namespaces alive; inode numbers alone prove nothing (the kernel reuses them).
    assert_eq!(
        netns_mounts(&netns),
        Vec::<String>::new(),
        "netns pinned by a mount"
    );
    assert_eq!(
        probe::named_netns(),
        named_netns_before,
        "named netns appeared"
    );
    assert_eq!(
        project.host_mounts(),
        mounts_before,
        "mounts left on the host"
    );
    // Until a later psy starts, the dead run's cgroups and scratch dir may stay (empty).
    let cgroups = cgroup_dirs_of(pid);
    // A process the kernel is still tearing down (a zombie until reaped) stays listed a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cgroup_pids(&cgroups).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(cgroup_pids(&cgroups), Vec::<String>::new(), "{cgroups:?}");
    eprintln!(
        "left until gc: cgroups {cgroups:?}, scratch {:?}",
        project.scratch_dirs_of(pid)
    );
    assert!(
        suites::links_of(pid).iter().any(|l| l.starts_with("psy")),
        "the killed run's bridge is there for gc to find"
    );
    assert_eq!(
        verdicts(&project, &run),
        fast_passed(),
        "results recorded before the kill"
    );
    assert_eq!(psy.reap().code(), None, "psy died of SIGKILL");

    let gc = project.gc();
    let gc_err = String::from_utf8_lossy(&gc.stderr);
    assert!(gc.status.success(), "psy gc failed: {gc_err}");
    assert_nothing_left(&project, pid, &mounts_before);

    let record = project.store().run(run.as_str()).unwrap().unwrap();
    assert_eq!(record.state, RunState::Aborted, "{record:?}");
    assert_eq!(record.summary.passed, FAST, "{record:?}");
    assert_eq!(verdicts(&project, &run), fast_passed(), "results after gc");
    let attempts = project.store().attempts(&run).unwrap();
    let attempted: Vec<_> = attempts
        .iter()
        .map(|a| (a.test_id.as_str(), a.status.as_str()))
        .collect();
    let expected: Vec<_> = fast_passed().into_iter().map(|(id, _)| id).collect();
    let expected: Vec<_> = expected.iter().map(|id| (id.as_str(), "pass")).collect();
    assert_eq!(attempted, expected, "only finished attempts are recorded");

    let show = project.psy(&["show", run.as_str()]).output().unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.status.success() && text.contains("Aborted"),
        "psy show: {text}"
    );
    for (id, _) in fast_passed() {
        let row = |l: &str| l.split_whitespace().take(2).eq([id.as_str(), "pass"]);
        assert!(text.lines().any(row), "psy show lacks `{id} pass`:\n{text}");
    }
}

/// Tests started at once in a storm, so that psy dies while containers are being launched.
const STORM: usize = 40;

/// SIGKILL while containers are still being created: an init cloned just before psy died must
/// not outlive it either. Which launch step the kill hits varies from run to run; whatever it
/// hits, nothing may survive.
#[test]
fn sigkill_while_containers_start_leaks_nothing() {
    require_root!();
    let project = Project::new(|m| {
        let mut s = DEFAULTS.replace("cpus = 0.1", "cpus = 0.02");
        for i in 0..STORM {
            s += &test_entry(&format!("t{i:02}"), &format!("exec sleep {m}{i:02}"), "");
        }
        s
    });
    let mounts_before = project.host_mounts();
    let mut psy = project.spawn_run(false);
    psy.read_until("a few attempts started", |seen| {
        let started = seen
            .iter()
            .filter(|e| matches!(e, RunEvent::AttemptStarted { .. }));
        started.count() >= STORM / 4
    });
    let run = psy.run_id();
    psy.signal(libc::SIGKILL, false);
    psy.wait_exit();
    let started = psy
        .seen
        .iter()
        .filter(|e| matches!(e, RunEvent::AttemptStarted { .. }));
    eprintln!(
        "killed with {} of {STORM} attempts started",
        started.count()
    );
    suites::after_sigkill_gc_leaves_nothing(&project, &mut psy, &mounts_before);
    let record = project.store().run(run.as_str()).unwrap().unwrap();
    assert_eq!(record.state, RunState::Aborted, "{record:?}");
}

/// SIGINT or SIGTERM to psy alone, or SIGINT to its whole process group as Ctrl-C in a
/// terminal sends it: psy kills the running tests, records the finished ones and exits non-zero.
fn interrupt_mid_run(sig: libc::c_int, whole_group: bool) {
    let project = Project::new(mixed_suite);
    let mounts_before = project.host_mounts();
    let (mut psy, netns) = start_mixed(&project, whole_group);
    let (pid, run) = (psy.pid(), psy.run_id());

    psy.signal(sig, whole_group);
    psy.wait_exit();
    let stderr = psy.stderr();
    // psy waited for its containers before exiting: nothing may be left, no grace period.
    assert_nothing_left(&project, pid, &mounts_before);
    assert_eq!(
        netns_mounts(&netns),
        Vec::<String>::new(),
        "netns pinned by a mount"
    );
    let status = psy.reap();
    assert!(
        matches!(status.code(), Some(c) if c != 0),
        "psy must exit non-zero by itself: {status:?}\n{stderr}"
    );

    let Some(RunEvent::RunFinished { summary, .. }) = psy.seen.last() else {
        panic!(
            "the stream must end with run-finished: {:#?}\n{stderr}",
            psy.seen
        );
    };
    let counts = (summary.passed, summary.not_run, summary.total);
    assert_eq!(counts, (FAST, SLOW, FAST + SLOW), "{summary:?}\n{stderr}");
    let record = project.store().run(run.as_str()).unwrap().unwrap();
    assert_eq!(record.state, RunState::Interrupted, "{record:?}");
    assert_eq!(&record.summary, summary);
    assert_eq!(
        verdicts(&project, &run),
        fast_passed(),
        "interrupted tests have no verdict"
    );
}

#[test]
fn sigint_to_psy_kills_running_tests_and_records_finished_ones() {
    require_root!();
    interrupt_mid_run(libc::SIGINT, false);
}

#[test]
fn ctrl_c_to_the_process_group_kills_running_tests_and_records_finished_ones() {
    require_root!();
    interrupt_mid_run(libc::SIGINT, true);
}

#[test]
fn sigterm_to_psy_kills_running_tests_and_records_finished_ones() {
    require_root!();
    interrupt_mid_run(libc::SIGTERM, false);
}

/// Runs `project` to its end and checks that nothing of the run remains.
fn run_to_end_leaving_nothing(project: &Project) -> (ExitStatus, RunId) {
    let mounts_before = project.host_mounts();
    let mut psy = project.spawn_run(false);
    psy.wait_exit();
    let last = psy.seen.last();
    assert!(
        matches!(last, Some(RunEvent::RunFinished { .. })),
        "{:#?}\n{}",
        psy.seen,
        psy.stderr()
    );
    assert_nothing_left(project, psy.pid(), &mounts_before);
    let run = psy.run_id();
    let record = project.store().run(run.as_str()).unwrap().unwrap();
    assert_eq!(record.state, RunState::Finished, "{record:?}");
    (psy.reap(), run)
}

#[test]
fn timeout_kills_the_test_and_its_daemon() {
    require_root!();
    let project = Project::new(|m| {
        let script = format!("setsid sleep {m}1 & echo daemon started; exec sleep {m}2");
        DEFAULTS.to_owned() + &test_entry("hangs", &script, "timeout = \"1s\"\n")
    });
    let (status, run) = run_to_end_leaving_nothing(&project);
    assert_eq!(status.code(), Some(1), "a timeout fails the run");
    let expected = vec![("hangs".to_owned(), TestStatus::Timeout)];
    assert_eq!(verdicts(&project, &run), expected);
    let attempts = project.store().attempts(&run).unwrap();
    let out = std::fs::read_to_string(&attempts[0].stdout_path).unwrap();
    assert!(
        out.contains("daemon started"),
        "the daemon was started: {out:?}"
    );
}

#[test]
fn daemons_of_a_passing_test_do_not_survive_it() {
    require_root!();
    let project = Project::new(|m| {
        let mut s = DEFAULTS.to_owned();
        s += &test_entry("setsid", &format!("setsid sleep {m}1 & exit 0"), "");
        s += &test_entry(
            "double-fork",
            &format!("(setsid sleep {m}2 &) ; exit 0"),
            "",
        );
        let nohup = format!("nohup sleep {m}3 >/dev/null 2>&1 & exit 0");
        s += &test_entry("nohup", &nohup, "");
        s
    });
    let (status, run) = run_to_end_leaving_nothing(&project);
    assert!(status.success(), "{status:?}");
    let expected: Vec<_> = ["double-fork", "nohup", "setsid"]
        .map(|id| (id.to_owned(), TestStatus::Pass))
        .into();
    assert_eq!(verdicts(&project, &run), expected);
}

#[test]
fn a_finished_run_leaves_nothing_behind() {
    require_root!();
    let project = Project::new(|m| {
        let mut s = DEFAULTS.to_owned();
        let write = "echo ok > $PSY_SCRATCH/f && cat $PSY_SCRATCH/f";
        s += &test_entry("passes", write, "");
        s += &test_entry("fails", "exit 3", "");
        let children = format!("sleep {m}1 & sleep {m}2 & echo spawned");
        s += &test_entry("children", &children, "");
        s
    });
    let (status, run) = run_to_end_leaving_nothing(&project);
    assert_eq!(status.code(), Some(1), "one test failed");
    let expected: Vec<_> = [
        ("children", TestStatus::Pass),
        ("fails", TestStatus::Fail),
        ("passes", TestStatus::Pass),
    ]
    .map(|(id, s)| (id.to_owned(), s))
    .into();
    assert_eq!(verdicts(&project, &run), expected);
}

/// SIGKILL while a multi-node scenario runs (nodes with volumes, the driver waiting), then
/// `psy gc`: no process, cgroup, bridge, veth, nftables table, loop device or mount is left.
#[test]
fn sigkill_mid_scenario_then_gc_leaves_nothing() {
    require_root!();
    let project = Project::new(|m| {
        let mut s = DEFAULTS.to_owned();
        s += &test_entry("scenario", &format!("exec sleep {m}9"), "");
        for i in 0..2 {
            s += &format!(
                "\n[[test.node]]\nname = \"n{i}\"\ncommand = [\"sleep\", \"{m}{i}\"]\n\
                 [[test.node.volume]]\nname = \"data\"\nsize = \"16MiB\"\npath = \"/tmp/data\"\n"
            );
        }
        s
    });
    let mounts_before = project.host_mounts();
    let mut psy = project.spawn_run(false);
    let pid = psy.pid();
    // Both nodes and the driver sleep: the whole scenario is up.
    let deadline = std::time::Instant::now() + harness::HANG_GUARD;
    while project
        .ours(&[pid])
        .iter()
        .filter(|p| p.cmdline.starts_with("sleep "))
        .count()
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "hang guard: the scenario did not come up\n{}",
            psy.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        !scenario_links(pid).is_empty() && loop_devices_of(&project).len() == 2,
        "the scenario's network and volumes are there: {:?}, {:?}",
        scenario_links(pid),
        loop_devices_of(&project)
    );
    psy.signal(libc::SIGKILL, false);
    psy.wait_exit();
    suites::after_sigkill_gc_leaves_nothing(&project, &mut psy, &mounts_before);
    let deadline = std::time::Instant::now() + harness::HANG_GUARD;
    while !(scenario_links(pid).is_empty() && loop_devices_of(&project).is_empty())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(scenario_links(pid), Vec::<String>::new(), "scenario links");
    assert_eq!(
        scenario_tables(pid),
        Vec::<String>::new(),
        "nftables tables"
    );
    assert_eq!(
        loop_devices_of(&project),
        Vec::<String>::new(),
        "loop devices"
    );
}

/// Interfaces of psy `pid`'s scenario networks (`ps<pid hex>n...`, `...v...`, `...t...`).
fn scenario_links(pid: u32) -> Vec<String> {
    let prefix = format!("ps{pid:x}");
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|l| l.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.strip_prefix(&prefix)
                .is_some_and(|rest| rest.starts_with(['n', 'v', 't']))
        })
        .collect()
}

/// nftables tables of psy `pid`'s scenarios (`psy_scenario_<pid>_<seq>`).
fn scenario_tables(pid: u32) -> Vec<String> {
    let out = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("psy_scenario_{pid}_")))
        .map(str::to_owned)
        .collect()
}

/// Loop devices whose backing file lies in the project.
fn loop_devices_of(project: &Project) -> Vec<String> {
    let dir = project.dir.display().to_string();
    std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter_map(|b| {
            let backing = std::fs::read_to_string(b.path().join("loop/backing_file")).ok()?;
            backing
                .starts_with(&dir)
                .then(|| b.file_name().to_string_lossy().into_owned())
        })
        .collect()
}
