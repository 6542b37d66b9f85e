//! Real containers on the real kernel (root only; prints "skipped" otherwise): isolation,
//! limits, cleanup. CI runs these as root.

mod support;

use psy_sandbox::cgroup::CgroupLimits;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;
use support::{limits, processes_with, Fixture};

#[test]
fn exit_codes_and_signals_come_back() {
    require_root!();
    let f = Fixture::new();
    let (o, _) = f.run("exit 0");
    assert!(o.setup_error.is_none(), "{:?}", o.setup_error);
    assert_eq!(o.exit.code, Some(0));
    assert_eq!(f.run("exit 7").0.exit.code, Some(7));
    let (o, _) = f.run("kill -TERM $$");
    assert_eq!((o.exit.code, o.exit.signal), (None, Some(libc::SIGTERM)));
}

#[test]
fn missing_command_is_an_error_before_start() {
    require_root!();
    let f = Fixture::new();
    let (mut spec, _) = f.spec("true");
    spec.argv = vec!["definitely-not-a-command-psy".into()];
    let err = f.sandbox.spawn(spec, &limits()).unwrap_err().to_string();
    assert!(err.contains("command not found"), "{err}");
}

#[test]
fn sees_only_its_own_processes() {
    require_root!();
    let f = Fixture::new();
    let (o, out) = f.run("ls /proc | grep -c '^[0-9][0-9]*$'; echo pid=$$; hostname");
    assert_eq!(o.exit.code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    // init, the shell, ls and grep at most.
    assert!(lines[0].parse::<u32>().unwrap() <= 4, "{out}");
    assert_eq!(lines[1], "pid=2", "the test is the init's child");
    assert_eq!(lines[2], "psy-test-host");
    // Host processes can be neither seen nor signalled: pid 1 in the container is our init. The
    // host process is recognised by its argv[0], since pids alone prove nothing when this test
    // runs in a PID namespace itself (psy running its own suite), where its pids repeat the
    // container's.
    let marker = format!("psy-host-victim-{}", std::process::id());
    let mut victim = std::process::Command::new("sleep")
        .arg0(&marker)
        .arg("600")
        .spawn()
        .unwrap();
    let pid = victim.id();
    // A pattern that matches the marker but not itself (no process in the container holds it).
    let pattern = format!("psy-host-victi[m]-{}", std::process::id());
    let (o, out) = f.run(&format!(
        "kill -0 {pid} 2>/dev/null && grep -qs '{pattern}' /proc/{pid}/cmdline && exit 1; \
         grep -lqs '{pattern}' /proc/[0-9]*/cmdline && exit 2; exit 0"
    ));
    let _ = victim.kill();
    let _ = victim.wait();
    assert_eq!(o.exit.code, Some(0), "a host process is visible: {out}");
}

#[test]
fn cannot_reach_host_loopback() {
    require_root!();
    let f = Fixture::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = format!(
        "python3 -c 'import socket; s=socket.socket(); s.settimeout(2); \
         r=s.connect_ex((\"127.0.0.1\",{port})); print(\"connect\", r); \
         l=socket.socket(); l.bind((\"127.0.0.1\",0)); l.listen(); print(\"own loopback ok\")'"
    );
    let (o, out) = f.run(&probe);
    assert_eq!(o.exit.code, Some(0), "{out}");
    assert!(out.contains("own loopback ok"), "{out}");
    assert!(!out.contains("connect 0"), "reached the host's port: {out}");
}

#[test]
fn root_and_project_are_read_only_tmp_and_scratch_writable() {
    require_root!();
    let f = Fixture::new();
    let script = "touch /psy-probe && echo root-writable; \
                  touch \"$PROJECT/probe\" && echo project-writable; \
                  echo x > /tmp/t && echo tmp-ok; \
                  echo x > \"$PSY_SCRATCH/s\" && echo scratch-ok; \
                  cat \"$PROJECT/marker\"";
    std::fs::write(f.project().join("marker"), "project-visible\n").unwrap();
    let (o, out) = f.run(script);
    assert_eq!(o.exit.code, Some(0), "{out}");
    assert!(
        !out.contains("root-writable") && !Path::new("/psy-probe").exists(),
        "{out}"
    );
    assert!(
        !out.contains("project-writable") && !f.project().join("probe").exists(),
        "{out}"
    );
    assert!(
        out.contains("tmp-ok") && out.contains("scratch-ok") && out.contains("project-visible"),
        "{out}"
    );
    // The private /tmp is not the host's.
    assert!(!Path::new("/tmp/t").exists() || std::fs::read_to_string("/tmp/t").unwrap() != "x\n");
}

/// Attempts in one slot share a template root (`rootfs/template.rs`): nothing one writes or
/// opens may be there for the next.
#[test]
fn nothing_an_attempt_leaves_reaches_the_next_in_its_slot() {
    require_root!();
    let f = Fixture::new();
    let leave =
        "for d in /tmp /dev/shm /run /dev /; do echo x > $d/left-behind 2>/dev/null; done; \
                 exec 3<>/dev/ptmx; ls /dev/pts; mkdir -p /tmp/a/b; echo left";
    let (o, out) = f.run(leave);
    assert_eq!(o.exit.code, Some(0), "{out}");
    assert!(out.contains("left"), "{out}");
    let look = "ls -a /tmp /dev/shm /run /dev /dev/pts; grep -c . /proc/self/mountinfo";
    let (o, first) = f.run(look);
    assert_eq!(o.exit.code, Some(0), "{first}");
    assert!(!first.contains("left-behind"), "{first}");
    assert!(
        !first.contains("\n0\n") && !first.contains("\na\n"),
        "{first}"
    );
    // The same mounts for every attempt: nothing piles up in the template.
    let (_, second) = f.run(look);
    assert_eq!(first, second);
}

#[test]
fn tmp_is_size_limited() {
    require_root!();
    let f = Fixture::new();
    let (o, out) = f.run("dd if=/dev/zero of=/tmp/big bs=1M count=32 2>&1; echo rc=$?");
    assert_eq!(o.exit.code, Some(0));
    assert!(out.contains("No space left on device"), "{out}");
}

#[test]
fn a_daemon_dies_with_its_test() {
    require_root!();
    let f = Fixture::new();
    let marker = format!("1000.{}", std::process::id());
    let (o, _) = f.run(&format!(
        "setsid sleep {marker} & (sleep {marker} &) ; exit 0"
    ));
    assert_eq!(o.exit.code, Some(0));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(processes_with(&marker), 0);
}

#[test]
fn timeout_kill_leaves_nothing() {
    require_root!();
    let f = Fixture::new();
    let marker = format!("2000.{}", std::process::id());
    let (o, _) = f.run_with(
        &format!("setsid sleep {marker} & sleep {marker}"),
        &limits(),
        Some(Duration::from_millis(300)),
    );
    assert_eq!(o.exit.signal, Some(libc::SIGKILL));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(processes_with(&marker), 0);
}

#[test]
fn memory_hog_is_oom_killed_and_measured() {
    require_root!();
    let f = Fixture::new();
    let l = CgroupLimits {
        memory_bytes: 64 << 20,
        ..limits()
    };
    let (o, _) = f.run_with(
        "python3 -c 'b = bytearray(300 << 20); b[::4096] = b\"x\" * len(b[::4096]); print(len(b))'",
        &l,
        None,
    );
    assert!(o.stats.oom_killed, "{o:?}");
    assert_ne!(o.exit.code, Some(0));
    let peak = o.stats.peak_memory_bytes.unwrap();
    assert!(peak > 32 << 20 && peak <= 64 << 20, "peak {peak}");
    // A neighbour in its own container is unaffected.
    assert_eq!(f.run("exit 0").0.exit.code, Some(0));
}

/// An OOM kill, even under a limit too small for the test to start (where the kernel could pick
/// any process charged to the group), kills only that test: a container running beside it and
/// the containers started after it are untouched, and the attempt is reported as OOM-killed.
#[test]
fn an_oom_kill_stays_inside_its_container() {
    require_root!();
    let f = Fixture::new();
    let (spec, neighbour_out) =
        f.spec("while [ ! -e \"$PROJECT/oom-done\" ]; do sleep 0.1; done; echo survived");
    let mut neighbour = f.sandbox.spawn(spec, &limits()).unwrap();
    let hog = "python3 -c 'b = bytearray(300 << 20); b[::4096] = b\"x\" * len(b[::4096])'";
    for memory_bytes in [64 << 20, 2 << 20] {
        let l = CgroupLimits {
            memory_bytes,
            ..limits()
        };
        let (o, _) = f.run_with(hog, &l, None);
        assert!(o.setup_error.is_none(), "{memory_bytes} bytes: {o:?}");
        assert!(o.stats.oom_killed, "{memory_bytes} bytes: {o:?}");
        assert_ne!(o.exit.code, Some(0), "{memory_bytes} bytes: {o:?}");
        assert_eq!(f.run("exit 0").0.exit.code, Some(0), "after {memory_bytes}");
    }
    std::fs::write(f.project().join("oom-done"), "").unwrap();
    assert!(neighbour.wait_timeout(None).unwrap());
    let o = neighbour.finish();
    let out = std::fs::read_to_string(neighbour_out).unwrap();
    assert_eq!((o.exit.code, out.trim()), (Some(0), "survived"), "{o:?}");
}

#[test]
fn fork_bomb_is_stopped_by_pids_limit() {
    require_root!();
    let f = Fixture::new();
    let l = CgroupLimits {
        pids: 32,
        ..limits()
    };
    let bomb = "python3 -c '\nimport os, time\nn = 0\nwhile n < 200:\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:\n        time.sleep(5)\n        os._exit(0)\n    n += 1\nprint(n, flush=True)\nos._exit(0)\n'";
    // The timeout only stops a bomb that got out of hand; the bomb itself ends in well under a
    // second natively (minutes in an emulated VM).
    let (o, out) = f.run_with(bomb, &l, Some(Duration::from_secs(120)));
    assert_eq!(o.exit.code, Some(0), "{out}");
    let forked: u32 = out.trim().parse().unwrap();
    assert!(forked < 32, "forked {forked} processes under pids.max=32");
    assert_eq!(processes_with("sleep 5"), 0);
}

#[test]
fn cpu_hog_with_one_cpu_uses_at_most_one_core() {
    require_root!();
    let f = Fixture::new();
    let (o, _) = f.run(
        "timeout 1 sh -c 'while :; do :; done' & timeout 1 sh -c 'while :; do :; done' & wait",
    );
    let cpu = o.stats.cpu_time.expect("cpu time measured");
    // Two busy loops for ~1s could use ~2s of CPU; the 1-CPU quota caps it near the wall time.
    assert!(
        cpu.as_secs_f64() <= o.wall_time.as_secs_f64() * 1.15 + 0.05,
        "cpu {cpu:?} wall {:?}",
        o.wall_time
    );
    // Only proves the loops ran at all (a loaded machine may give them little CPU).
    assert!(cpu.as_secs_f64() >= 0.1, "the loops ran: {cpu:?}");
}

#[test]
fn exclusive_cores_pin_the_test() {
    require_root!();
    let f = Fixture::new();
    let cores = psy_sandbox_cores();
    let last = *cores.last().unwrap();
    let l = CgroupLimits {
        exclusive_cores: Some(vec![last]),
        ..limits()
    };
    let (o, out) = f.run_with("grep Cpus_allowed_list /proc/self/status", &l, None);
    assert_eq!(o.exit.code, Some(0), "{out}");
    assert_eq!(
        out.trim().rsplit(['\t', ' ']).next().unwrap(),
        last.to_string(),
        "{out}"
    );
}

fn psy_sandbox_cores() -> Vec<u32> {
    let text = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = text
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    let mut cores = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => cores.extend(a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap()),
            None => cores.push(part.parse().unwrap()),
        }
    }
    cores
}

#[test]
fn storage_io_is_measured_without_io_limits() {
    require_root!();
    let f = Fixture::new();
    // 8 MiB written to the scratch dir by a child of the test (reaped by the init), synced so
    // it reaches the disk; tmpfs writes are not storage IO and do not count.
    let (o, out) = f.run(
        "sh -c 'dd if=/dev/zero of=$PSY_SCRATCH/f bs=1M count=8 conv=fsync status=none'; \
         dd if=/dev/zero of=/tmp/t bs=1M count=4 status=none; echo ok",
    );
    assert_eq!((o.exit.code, out.trim()), (Some(0), "ok"));
    let written = o.stats.io_write_bytes.expect("measured");
    assert!(
        (8 << 20..12 << 20).contains(&written),
        "{written} bytes counted for 8 MiB to disk and 4 MiB to tmpfs"
    );
    assert!(o.stats.io_read_bytes.is_some());
}

/// `readonly` binds show a directory the container would not see (under the host's /tmp) at
/// its own path: readable, not writable, no set-uid; a `writable` directory inside it and a
/// masked directory inside it land on top.
#[test]
fn readonly_directory_under_tmp_with_writable_and_masked_parts() {
    require_root!();
    let f = Fixture::new();
    let host = tempfile::Builder::new()
        .prefix("psy-readonly-")
        .tempdir_in("/tmp")
        .unwrap();
    let target = host.path().join("target");
    std::fs::create_dir_all(target.join("tmp")).unwrap();
    std::fs::create_dir_all(target.join("secret")).unwrap();
    std::fs::write(target.join("artifact"), "built\n").unwrap();
    std::fs::write(target.join("secret/key"), "hidden\n").unwrap();
    let t = target.display();
    let script = format!(
        "cat {t}/artifact; \
         touch {t}/new 2>/dev/null && echo readonly-written; \
         echo ok > {t}/tmp/written && echo tmp-written; \
         cat {t}/secret/key 2>/dev/null || echo secret-hidden; \
         grep \" {t} \" /proc/self/mountinfo | head -1"
    );
    let (mut spec, out) = f.spec(&script);
    spec.readonly = vec![target.clone()];
    spec.writable = vec![target.join("tmp")];
    spec.masked = vec![target.join("secret")];
    let mut c = f.sandbox.spawn(spec, &limits()).unwrap();
    c.wait_timeout(None).unwrap();
    let outcome = c.finish();
    let out = std::fs::read_to_string(out).unwrap();
    assert!(outcome.setup_error.is_none(), "{:?}", outcome.setup_error);
    assert!(out.starts_with("built\n"), "{out}");
    assert!(!out.contains("readonly-written"), "{out}");
    assert!(!target.join("new").exists());
    assert!(out.contains("tmp-written"), "{out}");
    assert_eq!(
        std::fs::read_to_string(target.join("tmp/written")).unwrap(),
        "ok\n"
    );
    assert!(out.contains("secret-hidden"), "{out}");
    let mount = out.lines().last().unwrap_or_default();
    for option in ["ro", "nosuid", "nodev"] {
        assert!(
            mount.split([' ', ',']).any(|o| o == option),
            "no {option}: {mount}"
        );
    }
}
