//! Tests that take their own process down (os._exit, a daemon, a hang): the worker reports them
//! and serves the next request.

use crate::support::{plain_exit, read, warm, Warm};
use psy_model::AttemptStatus;
use psy_warm::suite::request;
use psy_warm::{verdict, ChildExit};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

#[test]
fn exit_daemon_and_hang_leave_the_worker_serving() {
    let Warm {
        dir,
        mut parent,
        env,
        probe,
        files,
    } = warm("hostile", &[]);
    let worker = parent.pid();
    let run = |parent: &mut psy_warm::WarmParent, test: &str, index: usize| {
        let nodeid = format!("test_hostile.py::{test}");
        parent.run(&request(&nodeid, index, files.path())).unwrap()
    };

    // os._exit(3): the test's own exit status, as plain pytest exits with it.
    let child = run(&mut parent, "test_os_exit", 0);
    let ended = parent.wait(child).unwrap();
    assert_eq!(ended.exit, ChildExit::Code(3));
    let plain = plain_exit(&dir, "test_hostile.py::test_os_exit", &env);
    assert_eq!(plain.code(), Some(3));
    let v = verdict(ended.exit, &ended.result);
    assert_eq!(v.status, AttemptStatus::Fail);
    assert_eq!(
        v.message.as_deref(),
        Some("exited with status 3 before pytest reported")
    );

    // pytest.exit(): the status it asks for, as plain pytest ends with it.
    let child = run(&mut parent, "test_pytest_exit", 6);
    let ended = parent.wait(child).unwrap();
    assert_eq!(ended.exit, ChildExit::Code(4));
    let plain = plain_exit(&dir, "test_hostile.py::test_pytest_exit", &env);
    assert_eq!(plain.code(), Some(4));

    // A daemon outlives its test; the test's end is seen all the same.
    let child = run(&mut parent, "test_daemon", 1);
    let ended = parent.wait(child).unwrap();
    assert_eq!(ended.exit, ChildExit::Code(0));
    assert_eq!(
        verdict(ended.exit, &ended.result).status,
        AttemptStatus::Pass
    );
    let daemon = read(&probe.path().join("daemon.pid"));
    let killed = std::process::Command::new("kill")
        .args(["-9", daemon.trim()])
        .status()
        .unwrap();
    assert!(killed.success(), "the daemon {daemon} was running");

    // A hang: still running when the driver looks, killed through its pidfd.
    let child = run(&mut parent, "test_hang", 2);
    assert!(!child
        .wait_timeout(Some(Duration::from_millis(200)))
        .unwrap());
    child.kill().unwrap();
    assert!(child.wait_timeout(None).unwrap());
    let ended = parent.wait(child).unwrap();
    assert_eq!(ended.exit, ChildExit::Signal(9));
    let v = verdict(ended.exit, &ended.result);
    assert_eq!(v.status, AttemptStatus::Fail);
    assert_eq!(v.message.as_deref(), Some("killed by signal 9"));

    // A crash and a SIGKILL (as from the OOM killer): the signal, as plain pytest dies of it;
    // faulthandler reports the crash in the test's own stderr log.
    for (index, (test, signal)) in [("test_segfault", 11), ("test_killed", 9)]
        .into_iter()
        .enumerate()
    {
        let child = run(&mut parent, test, 4 + index);
        let ended = parent.wait(child).unwrap();
        assert_eq!(ended.exit, ChildExit::Signal(signal), "{test}");
        let plain = plain_exit(&dir, &format!("test_hostile.py::{test}"), &env);
        assert_eq!(plain.signal(), Some(signal), "{test}");
    }
    let crash_log = read(&files.path().join("4.err"));
    assert!(
        crash_log.contains("Fatal Python error: Segmentation fault"),
        "{crash_log}"
    );

    // The same worker serves the next test.
    let child = run(&mut parent, "test_after", 3);
    let ended = parent.wait(child).unwrap();
    assert_eq!(ended.exit, ChildExit::Code(0));
    assert_eq!(parent.pid(), worker);
    parent.shutdown().unwrap();
}

#[test]
fn stopping_the_worker_kills_a_child_still_running() {
    let Warm {
        mut parent,
        probe: _probe,
        files,
        ..
    } = warm("hostile", &[]);
    let child = parent
        .run(&request("test_hostile.py::test_hang", 0, files.path()))
        .unwrap();
    parent.shutdown().unwrap();
    // The worker killed and reaped it before it ended.
    assert!(child.wait_timeout(None).unwrap());
}
