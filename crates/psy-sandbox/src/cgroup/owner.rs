//! Who owns a run's cgroups, as written in the group's name, and whether that psy still lives.
//!
//! cgroups are global to the machine while pids are not: a psy inside a container (psy's own
//! suite run by psy, a CI agent in a pod) has pids that repeat the host's and other containers'.
//! So the owner token in `<prefix>-<token>-<run>` is the pid alone for a psy in the initial PID
//! namespace, and `<pid>n<ns>` (the PID namespace's inode) for one in a nested namespace. `gc`
//! removes a group only when its owner is surely gone: a pid of our own namespace that no longer
//! exists, or, seen from the initial namespace (which sees every process), a nested namespace
//! in which no process has that pid. A nested psy leaves the groups of other namespaces alone.

use std::path::Path;
use std::sync::OnceLock;

/// Inode of the initial PID namespace (`PROC_PID_INIT_INO` in the kernel).
const INITIAL_PID_NS: u64 = 0xEFFF_FFFC;

/// The psy process a group belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Its pid in its own PID namespace.
    pub pid: u32,
    /// The inode of that namespace; `None` for the initial one.
    pub pid_ns: Option<u64>,
}

impl Owner {
    /// This process.
    pub fn current() -> Owner {
        Owner {
            pid: std::process::id(),
            pid_ns: own_pid_ns().filter(|&ns| ns != INITIAL_PID_NS),
        }
    }

    /// The token written into group names.
    pub fn token(&self) -> String {
        match self.pid_ns {
            None => self.pid.to_string(),
            Some(ns) => format!("{}n{ns}", self.pid),
        }
    }

    /// The owner of a base child named `<prefix>-<token>-...`, if it has that shape.
    pub(crate) fn from_group_name(prefix: &str, name: &str) -> Option<Owner> {
        let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
        let (token, _) = rest.split_once('-')?;
        let (pid, pid_ns) = match token.split_once('n') {
            Some((pid, ns)) => (pid, Some(digits(ns)?)),
            None => (token, None),
        };
        Some(Owner {
            pid: u32::try_from(digits(pid)?).ok()?,
            pid_ns,
        })
    }

    /// Whether this owner may still be running, seen from this process: `pid_alive` answers
    /// for pids of our own PID namespace (a `/proc` lookup, or a fake in tests).
    pub fn may_be_alive(&self, pid_alive: &dyn Fn(u32) -> bool) -> bool {
        let ours = own_pid_ns().filter(|&ns| ns != INITIAL_PID_NS);
        if self.pid_ns == ours {
            return pid_alive(self.pid);
        }
        match (ours, self.pid_ns) {
            // From the initial namespace every process is visible.
            (None, Some(ns)) => pid_in_namespace(Path::new("/proc"), self.pid, ns),
            // An ancestor's or a sibling's: not ours to judge.
            _ => true,
        }
    }
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The inode of this process's PID namespace (read once).
fn own_pid_ns() -> Option<u64> {
    static OWN: OnceLock<Option<u64>> = OnceLock::new();
    *OWN.get_or_init(|| ns_inode(Path::new("/proc/self/ns/pid")))
}

/// The namespace inode named by a `/proc/PID/ns/...` link (`pid:[4026531836]`).
fn ns_inode(link: &Path) -> Option<u64> {
    let target = std::fs::read_link(link).ok()?;
    let text = target.to_str()?;
    digits(text.split_once('[')?.1.strip_suffix(']')?)
}

/// Whether some process under `proc_root` lives in PID namespace `ns` with pid `pid` there
/// (the last `NSpid` entry of its status).
fn pid_in_namespace(proc_root: &Path, pid: u32, ns: u64) -> bool {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return true; // cannot tell: keep the group
    };
    entries.flatten().any(|entry| {
        let dir = entry.path();
        ns_inode(&dir.join("ns/pid")) == Some(ns)
            && std::fs::read_to_string(dir.join("status")).is_ok_and(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .and_then(|ids| ids.split_whitespace().last())
                    .and_then(|last| last.parse::<u32>().ok())
                    == Some(pid)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_through_group_names() {
        for owner in [
            Owner {
                pid: 42,
                pid_ns: None,
            },
            Owner {
                pid: 4,
                pid_ns: Some(4026532871),
            },
        ] {
            let name = format!("psy-{}-20261129-1200-ab12/p000001", owner.token());
            assert_eq!(Owner::from_group_name("psy", &name), Some(owner));
        }
    }

    #[test]
    fn only_our_shape_is_an_owner() {
        assert_eq!(
            Owner::from_group_name("psy", "psy-42-").map(|o| o.pid),
            Some(42)
        );
        for name in [
            "psytest-42-x",
            "psy-x42-x",
            "psy-42",
            "supervisor",
            "other-42-x",
            "psy-4n-x",
            "psy-n5-x",
            "psy-4n5x-y",
        ] {
            assert_eq!(Owner::from_group_name("psy", name), None, "{name}");
        }
    }

    #[test]
    fn our_own_pids_are_judged_by_the_caller() {
        let me = Owner::current();
        assert!(me.may_be_alive(&|pid| pid == me.pid));
        assert!(!me.may_be_alive(&|_| false));
    }

    #[test]
    fn this_process_is_found_in_its_namespace() {
        let Some(ns) = own_pid_ns() else { return };
        assert!(pid_in_namespace(Path::new("/proc"), std::process::id(), ns));
        assert!(!pid_in_namespace(Path::new("/proc"), u32::MAX, ns));
    }
}
