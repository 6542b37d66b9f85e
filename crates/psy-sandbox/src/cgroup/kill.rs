//! Emptying a cgroup for good: repeat "stop the world, kill everyone" until nobody is left.
//!
//! A single pass over `cgroup.procs` is not enough: a process can fork between the read and the
//! kill, and `setsid` daemons do not die with their parent. Freezing first (when a freezer exists)
//! makes the listing exact; the loop catches whatever still slipped through.

use std::path::Path;
use std::time::{Duration, Instant};

use super::error::CgroupError;

/// How long to keep killing before giving up on an unkillable process (e.g. stuck in D state).
const KILL_DEADLINE: Duration = Duration::from_secs(10);

/// One way of sending SIGKILL to a whole group.
pub(crate) enum KillRound<'a> {
    /// `cgroup.kill` (v2, Linux 5.14+): the kernel kills the subtree atomically, forks included.
    KillFile(&'a dyn Fn() -> Result<(), CgroupError>),
    /// Freeze (if a freezer exists), signal every listed pid, thaw.
    Signal {
        freeze: Option<&'a dyn Fn(bool) -> Result<(), CgroupError>>,
    },
}

/// Kills everything `list` reports for the group at `path` until it reports nothing.
/// Returns how many distinct pids were killed.
pub(crate) fn kill_until_empty(
    path: &Path,
    list: &dyn Fn() -> Result<Vec<u32>, CgroupError>,
    round: KillRound<'_>,
) -> Result<usize, CgroupError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    let mut signalled = std::collections::BTreeSet::new();
    loop {
        let pids = list()?;
        if pids.is_empty() {
            return Ok(signalled.len());
        }
        if pids.contains(&std::process::id()) {
            // Killing ourselves would be worse than leaking the group.
            return Err(CgroupError::ContainsCaller {
                path: path.to_path_buf(),
            });
        }
        if start.elapsed() > KILL_DEADLINE {
            return Err(CgroupError::KillTimeout {
                path: path.to_path_buf(),
                pids,
                waited: start.elapsed(),
            });
        }
        match &round {
            KillRound::KillFile(kill) => {
                signalled.extend(pids);
                kill()?;
            }
            KillRound::Signal { freeze } => {
                signal_round(path, list, *freeze, &mut signalled)?;
            }
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

fn signal_round(
    path: &Path,
    list: &dyn Fn() -> Result<Vec<u32>, CgroupError>,
    freeze: Option<&dyn Fn(bool) -> Result<(), CgroupError>>,
    signalled: &mut std::collections::BTreeSet<u32>,
) -> Result<(), CgroupError> {
    if let Some(freeze) = freeze {
        freeze(true)?;
    }
    // Re-list once frozen: children forked after the first listing are visible (and stopped) now.
    let result = list().and_then(|pids| {
        pids.iter()
            .filter(|&&pid| pid != std::process::id())
            .try_for_each(|&pid| {
                signalled.insert(pid);
                sigkill(path, pid)
            })
    });
    // Thaw even after an error: SIGKILL only takes effect once a frozen task runs again.
    if let Some(freeze) = freeze {
        freeze(false)?;
    }
    result
}

fn sigkill(path: &Path, pid: u32) -> Result<(), CgroupError> {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return Ok(());
    };
    if raw <= 1 {
        return Ok(());
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(raw, libc::SIGKILL) } == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        return Ok(()); // already gone
    }
    Err(CgroupError::Signal {
        pid,
        path: path.to_path_buf(),
        source: err,
    })
}

/// Polls `done` a short while; freezing is asynchronous but must not hold up a kill for long,
/// so the caller proceeds either way.
pub(crate) fn wait_briefly(
    done: &dyn Fn() -> Result<bool, CgroupError>,
) -> Result<bool, CgroupError> {
    let mut delay = Duration::from_micros(200);
    for _ in 0..12 {
        if done()? {
            return Ok(true);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn repeats_rounds_until_the_group_is_empty() {
        let rounds = Cell::new(0);
        // Two processes that survive the first round (a fork raced it), gone after the second.
        let list = || {
            Ok(if rounds.get() < 2 {
                vec![100, 101]
            } else {
                vec![]
            })
        };
        let kill = || {
            rounds.set(rounds.get() + 1);
            Ok(())
        };
        let killed = kill_until_empty(Path::new("/g"), &list, KillRound::KillFile(&kill)).unwrap();
        assert_eq!(rounds.get(), 2);
        assert_eq!(killed, 2);
    }

    #[test]
    fn never_kills_the_caller() {
        let me = std::process::id();
        let list = || Ok(vec![me]);
        let kill = || panic!("must not kill a group holding psy itself");
        let err = kill_until_empty(Path::new("/g"), &list, KillRound::KillFile(&kill)).unwrap_err();
        assert!(matches!(err, CgroupError::ContainsCaller { .. }), "{err}");
    }
}
