//! Real-kernel checks of the cgroup drivers (v1 or v2, whatever this host has). Needs root;
//! prints "skipped: needs root" otherwise. Every test uses its own group names, so they can run
//! in parallel, and the `psytest` prefix keeps gc away from real Psyduck groups.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use psy_sandbox::cgroup::{self, Cgroup, CgroupDriver, CgroupLimits, CgroupVersion};

const PREFIX: &str = "psytest";

fn driver(test: &str) -> Option<Box<dyn CgroupDriver>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: needs root ({test})");
        return None;
    }
    let detected = cgroup::detect(Path::new("/proc"), PREFIX).expect("detect");
    match detected.driver {
        Some(d) => Some(d),
        None => {
            println!("skipped: no usable cgroup ({test}): {:?}", detected.reason);
            None
        }
    }
}

fn name(tag: &str) -> String {
    cgroup::run_group_name(PREFIX, std::process::id(), tag)
}

/// Runs `sh -c script` inside `group`: the child writes "0" to the group's procs files between
/// fork and exec, exactly like the container init does.
fn spawn_in(group: &dyn Cgroup, script: &str) -> Child {
    let files: Vec<File> = group
        .procs_files()
        .iter()
        .map(|p| {
            fs::OpenOptions::new()
                .write(true)
                .open(p)
                .expect("open procs file")
        })
        .collect();
    let fds: Vec<i32> = files.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure only calls write(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn sh in cgroup");
    drop(files);
    child
}

/// Liveness wait (not a timing assertion): polls until `cond` or panics after a minute.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never happened: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads `file` from whichever of the group's directories has it.
fn knob(group: &dyn Cgroup, file: &str) -> Option<String> {
    group
        .procs_files()
        .iter()
        .find_map(|p| fs::read_to_string(p.parent().unwrap().join(file)).ok())
        .map(|s| s.trim().to_owned())
}

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purposes (it waits only for its parent to reap it).
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn limits_land_in_kernel_files_and_writing_zero_joins() {
    let Some(driver) = driver("limits") else {
        return;
    };
    let cores = (std::thread::available_parallelism().map_or(1, |n| n.get()) > 1).then(|| vec![1]);
    let limits = CgroupLimits {
        cpu_millis: 1500,
        exclusive_cores: cores.clone(),
        memory_bytes: 64 << 20,
        pids: 20,
        io: None,
        freezable: false,
    };
    let group = driver
        .create(&format!("{}/0", name("limits")), &limits)
        .unwrap();
    let expect = |file: &str, value: &str| {
        assert_eq!(knob(group.as_ref(), file).as_deref(), Some(value), "{file}");
    };
    match driver.version() {
        CgroupVersion::V1 => {
            expect("cpu.cfs_period_us", "100000");
            expect("cpu.cfs_quota_us", "150000");
            expect("cpu.shares", "1536");
            expect("memory.limit_in_bytes", "67108864");
            if knob(group.as_ref(), "memory.memsw.limit_in_bytes").is_some() {
                expect("memory.memsw.limit_in_bytes", "67108864");
            }
        }
        CgroupVersion::V2 => {
            expect("cpu.max", "150000 100000");
            expect("cpu.weight", "150");
            expect("memory.max", "67108864");
        }
    }
    expect("pids.max", "20");
    if cores.is_some() && knob(group.as_ref(), "cpuset.cpus").is_some() {
        expect("cpuset.cpus", "1");
    }

    let mut child = spawn_in(group.as_ref(), "exec sleep 100");
    let pid = child.id();
    wait_until("child in group", || group.pids().unwrap() == vec![pid]);
    let membership = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let ours = membership
        .lines()
        .filter(|l| l.contains(&name("limits")))
        .count();
    assert_eq!(
        ours,
        group.procs_files().len(),
        "joined every hierarchy:\n{membership}"
    );

    let dirs: Vec<_> = group
        .procs_files()
        .iter()
        .map(|p| p.parent().unwrap().to_owned())
        .collect();
    group.remove().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    driver.remove_group(&name("limits")).unwrap();
    for d in &dirs {
        assert!(!d.parent().unwrap().exists(), "run dir left behind");
    }
}

#[test]
fn kill_all_leaves_no_process_even_daemons() {
    let Some(driver) = driver("kill") else { return };
    let limits = CgroupLimits {
        pids: 100,
        ..Default::default()
    };
    let group = driver.create(&name("kill"), &limits).unwrap();
    let mut child = spawn_in(
        group.as_ref(),
        "sleep 100 & sleep 100 & setsid sleep 100 & wait",
    );
    wait_until("sh and three sleeps", || group.pids().unwrap().len() >= 4);
    let before = group.pids().unwrap();

    group.kill_all().unwrap();
    assert_eq!(group.pids().unwrap(), Vec::<u32>::new());
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    for pid in before {
        assert!(!alive(pid), "pid {pid} survived kill_all");
    }
    let dirs: Vec<_> = group
        .procs_files()
        .iter()
        .map(|p| p.parent().unwrap().to_owned())
        .collect();
    group.remove().unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn kill_all_stops_a_fork_loop_that_keeps_forking() {
    let Some(driver) = driver("forkloop") else {
        return;
    };
    let limits = CgroupLimits {
        pids: 2000,
        ..Default::default()
    };
    let group = driver.create(&name("forkloop"), &limits).unwrap();
    // Every iteration leaves an orphaned sleep behind while the loop forks on.
    let mut child = spawn_in(group.as_ref(), "while :; do (sleep 100 &); done");
    wait_until("the loop got going", || group.pids().unwrap().len() >= 30);
    group.kill_all().unwrap();
    assert_eq!(group.pids().unwrap(), Vec::<u32>::new());
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    group.remove().unwrap();
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    let Some(driver) = driver("oom") else { return };
    let limit = 64u64 << 20;
    let limits = CgroupLimits {
        memory_bytes: limit,
        pids: 50,
        ..Default::default()
    };
    let group = driver.create(&name("oom"), &limits).unwrap();
    // The shell keeps the whole command substitution (200 MiB) in its own memory.
    let hog = "x=$(head -c 209715200 /dev/zero | tr '\\0' a); echo ${#x}";
    let mut child = spawn_in(group.as_ref(), hog);
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "hog not killed: {status:?}"
    );

    let stats = group.stats().unwrap();
    assert!(stats.oom_killed, "{stats:?}");
    if let Some(peak) = stats.peak_memory_bytes {
        assert!(
            peak > limit / 2 && peak <= limit + limit / 16,
            "peak {peak} not near {limit}"
        );
    }
    group.remove().unwrap();
}

#[test]
fn cpu_quota_caps_a_busy_loop() {
    let Some(driver) = driver("cpu") else { return };
    let limits = CgroupLimits {
        cpu_millis: 500,
        pids: 10,
        ..Default::default()
    };
    let group = driver.create(&name("cpu"), &limits).unwrap();
    let start = Instant::now();
    // Reaped below with wait4, which also gives its rusage.
    #[allow(clippy::zombie_processes)]
    let child = spawn_in(group.as_ref(), "while :; do :; done");
    std::thread::sleep(Duration::from_millis(1500));
    group.kill_all().unwrap();
    let wall = start.elapsed();
    // The group's own accounting when it has one (v2, or v1 with cpu,cpuacct co-mounted);
    // otherwise the loop's rusage (psy takes CPU time from the container init's rusage too).
    // SAFETY: waiting for our own child; rusage is plain data.
    let rusage_cpu = unsafe {
        let mut status = 0;
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage);
        let tv = |t: libc::timeval| {
            Duration::from_micros(t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64)
        };
        tv(usage.ru_utime) + tv(usage.ru_stime)
    };
    let cpu = group.stats().unwrap().cpu_time.unwrap_or(rusage_cpu);
    assert!(cpu > Duration::ZERO, "busy loop never ran");
    // 0.5 CPU over `wall`, with generous room for one extra period and sh startup.
    assert!(
        cpu.as_secs_f64() <= 0.8 * wall.as_secs_f64(),
        "used {cpu:?} of CPU in {wall:?} with a 0.5 CPU quota"
    );
    group.remove().unwrap();
}

#[test]
fn pids_max_stops_a_fork_loop() {
    let Some(driver) = driver("pids") else { return };
    let limits = CgroupLimits {
        pids: 20,
        ..Default::default()
    };
    let group = driver.create(&name("pids"), &limits).unwrap();
    let script = "i=0; while [ $i -lt 100 ]; do sleep 100 & i=$((i+1)); done; wait";
    let mut child = spawn_in(group.as_ref(), script);
    // dash gives up ("Cannot fork", exit 2) at the first refused fork.
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "the loop was never refused a fork");
    let left = group.pids().unwrap().len();
    assert!(
        left > 0 && left < 20,
        "{left} processes in a pids.max=20 group"
    );
    let events = knob(group.as_ref(), "pids.events").unwrap_or_default();
    assert!(
        events.contains("max ") && !events.contains("max 0"),
        "pids.events: {events}"
    );
    group.remove().unwrap();
}

#[test]
fn gc_reclaims_groups_of_dead_pids_only() {
    let Some(driver) = driver("gc") else { return };
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let stale_name = cgroup::run_group_name(PREFIX, dead_pid, "gc");
    let stale = driver
        .create(&format!("{stale_name}/0"), &CgroupLimits::default())
        .unwrap();
    let mut orphan = spawn_in(stale.as_ref(), "exec sleep 100");
    wait_until("orphan in stale group", || {
        !stale.pids().unwrap().is_empty()
    });
    let stale_dirs: Vec<_> = stale
        .procs_files()
        .iter()
        .map(|p| p.parent().unwrap().to_owned())
        .collect();
    let ours = driver
        .create(&name("gc-keep"), &CgroupLimits::default())
        .unwrap();

    let report = driver.gc(&cgroup::owner_alive(Path::new("/proc"))).unwrap();
    assert!(report.removed.contains(&stale_name), "{report:?}");
    assert!(report.killed_pids >= 1, "{report:?}");
    assert_eq!(orphan.wait().unwrap().signal(), Some(libc::SIGKILL));
    for d in &stale_dirs {
        assert!(
            !d.exists() && !d.parent().unwrap().exists(),
            "{} survived gc",
            d.display()
        );
    }
    for p in ours.procs_files() {
        assert!(p.exists(), "gc removed our live group {}", p.display());
    }
    ours.remove().unwrap();
}

/// On a hybrid host the v2 mount has no controllers, but membership, `cgroup.kill`, `cpu.stat`
/// and removal are real kernel v2 behaviour, so the v2 driver gets exercised here too.
#[test]
fn v2_driver_on_a_hybrid_unified_mount() {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if driver("v2-hybrid").is_none() {
        return;
    }
    if !unified.join("cgroup.controllers").exists() {
        println!("skipped: no hybrid cgroup2 mount");
        return;
    }
    let layout = cgroup::Layout::V2Root {
        mount: unified.to_owned(),
    };
    let v2 = cgroup::setup(&layout, PREFIX).unwrap().unwrap();
    assert_eq!(v2.version(), CgroupVersion::V2);
    let missing = v2.missing_guarantees().join("\n");
    let controllers = fs::read_to_string(unified.join("cgroup.controllers")).unwrap();
    if !controllers.contains("memory") {
        assert!(missing.contains("memory limits"), "{missing}");
    }

    let group = v2
        .create(&format!("{}/0", name("v2")), &CgroupLimits::default())
        .unwrap();
    let mut child = spawn_in(group.as_ref(), "sleep 100 & setsid sleep 100 & wait");
    wait_until("sh and two sleeps", || group.pids().unwrap().len() >= 3);
    let before = group.pids().unwrap();
    group.kill_all().unwrap();
    assert_eq!(group.pids().unwrap(), Vec::<u32>::new());
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    for pid in before {
        assert!(!alive(pid), "pid {pid} survived kill_all");
    }
    assert!(
        group.stats().unwrap().cpu_time.is_some(),
        "cpu.stat is always there on v2"
    );
    let dir = group.procs_files()[0].parent().unwrap().to_owned();
    group.remove().unwrap();
    assert!(!dir.exists());
    v2.remove_group(&name("v2")).unwrap();
    assert!(!dir.parent().unwrap().exists());
    // Only this test uses the unified mount: leave it as found.
    let _ = fs::remove_dir(unified.join(cgroup::BASE_DIR_NAME));
}
