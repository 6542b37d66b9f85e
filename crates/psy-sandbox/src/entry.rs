//! The sandbox entry for a process psy did not start: a warm fork (`crates/psy-warm`) becomes
//! the test of a *held* container (`ContainerSpec::hold`) by joining what psy set up for it.
//!
//! psy does everything that needs no cooperation: the init (namespaces, root, `/tmp`, scratch,
//! volumes, network, hostname) and the cgroup with the test's limits. What only the process
//! itself can do is a short, fixed list of system calls, which [`JoinEntry`] describes with
//! every policy decision already made (which namespaces, which user namespace, which seccomp
//! program, which capabilities), so an adapter in any language (Python's `ctypes`, a JVM's
//! FFI, Node's) performs it without knowing psy's rules. The steps, in this order, are the
//! same the launcher's own test process takes (`child.rs`, `confine.rs`):
//!
//! 1. Before the fork, in the forking process (root only, [`JoinEntry::pid_namespace_by_parent`]):
//!    `setns(pidfd(init_pid), CLONE_NEWPID)`, fork, then `setns` back to its own PID namespace:
//!    the child is born inside the container's PID namespace.
//! 2. In the child: write `0` to every [`JoinEntry::cgroup_procs`] file (joins the cgroup).
//! 3. Open [`JoinEntry::slot_userns`] (a host path, unreachable later).
//! 4. `setns(pidfd(init_pid), namespaces)`. Without step 1 (rootless), `namespaces` includes
//!    `CLONE_NEWPID`: the child forks once more and only the grandchild runs the test, the child
//!    waiting for it and leaving as it did (its exit code, or the same signal).
//! 5. `cgroup_namespace`: `unshare(CLONE_NEWCGROUP)`; `mount_cgroup2`: mount `cgroup2` read-only
//!    (`nosuid,nodev,noexec`) at `/sys/fs/cgroup`.
//! 6. Confinement: `slot_userns`: `setns(fd, CLONE_NEWUSER)`, `setresgid(0,0,0)`,
//!    `setgroups(0)`, `setresuid(0,0,0)`; `nested_userns`: `unshare(CLONE_NEWUSER|CLONE_NEWNS)`,
//!    `setgroups` `deny`, `gid_map` and `uid_map` `0 0 1`. Then the seccomp program
//!    (`seccomp(SECCOMP_SET_MODE_FILTER)`), then `keep_capabilities` if set (every other
//!    capability dropped from the bounding, effective, permitted and inheritable sets).
//! 7. Drop each of `drop_bounding` from the bounding set, become `user` if set, `chdir(cwd)`, and
//!    close every descriptor but stdio and the adapter's result file.
//!
//! Any failing step ends the child (it must never run the test half-confined); the held init
//! stays until psy kills it, so nothing of a failed entry survives the attempt.

use crate::confine::Confinement;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What a forked process does to become the test of a held container (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinEntry {
    /// The held init's host pid; its namespaces are joined through a pidfd of it.
    pub init_pid: u32,
    /// `setns` flags for the init's pidfd: mount, network, UTS and IPC, plus the user namespace
    /// when the init has its own (rootless), plus `CLONE_NEWPID` when the forking process
    /// cannot enter the PID namespace for its child.
    pub namespaces: i32,
    /// The forking process enters the init's PID namespace for its next child (root).
    pub pid_namespace_by_parent: bool,
    /// `cgroup.procs` files to write `0` to.
    pub cgroup_procs: Vec<PathBuf>,
    /// Unshare a cgroup namespace rooted at the test's own cgroup (hardened containers).
    pub cgroup_namespace: bool,
    /// Mount that namespace's `cgroup2` read-only at `/sys/fs/cgroup` (hardened, cgroup v2).
    pub mount_cgroup2: bool,
    /// Root with per-slot user namespaces: a path (`/proc/<psy>/fd/<n>`) that opens the slot's
    /// user namespace, joined as its root.
    pub slot_userns: Option<PathBuf>,
    /// Rootless: unshare a nested user and mount namespace that maps only root.
    pub nested_userns: bool,
    /// `struct sock_filter` entries `[code, jt, jf, k]` to install, if any.
    pub seccomp: Option<Vec<[u32; 4]>>,
    /// Root without user namespaces: the capability mask to keep (Docker's defaults).
    pub keep_capabilities: Option<u64>,
    /// Capabilities to drop from the bounding set last (`CAP_NET_ADMIN`: psy owns the network).
    pub drop_bounding: Vec<u32>,
    /// `(uid, gid)` to become last of all (an image's `User`).
    pub user: Option<(u32, u32)>,
    /// The working directory inside the container.
    pub cwd: PathBuf,
}

/// `CAP_NET_ADMIN`.
const CAP_NET_ADMIN: u32 = 12;

/// What [`JoinEntry::new`] needs to know of the container being prepared.
pub(crate) struct EntryInput<'a> {
    pub(crate) confinement: Confinement,
    /// psy runs without root: the init has a user namespace of its own.
    pub(crate) unprivileged: bool,
    pub(crate) cgroup_procs: Vec<PathBuf>,
    pub(crate) cgroup2: bool,
    /// The slot's user namespace descriptor in this process (`SlotUserns`).
    pub(crate) slot_userns: Option<std::os::fd::RawFd>,
    pub(crate) allow: crate::Allowances,
    pub(crate) user: Option<(u32, u32)>,
    pub(crate) cwd: &'a std::path::Path,
}

impl JoinEntry {
    /// The entry of a container about to be started (its init's pid is filled in once known).
    pub(crate) fn new(input: EntryInput<'_>) -> JoinEntry {
        let hardened = input.confinement != Confinement::Privileged;
        let mut namespaces = libc::CLONE_NEWNS | libc::CLONE_NEWNET | libc::CLONE_NEWUTS;
        namespaces |= libc::CLONE_NEWIPC;
        if input.unprivileged {
            // The init's own user namespace first (the kernel orders a pidfd's namespaces), and
            // the PID namespace with it: a process without host root cannot enter it for its
            // children from outside (`setns` wants CAP_SYS_ADMIN in the caller's own namespace).
            namespaces |= libc::CLONE_NEWUSER | libc::CLONE_NEWPID;
        }
        let seccomp = hardened.then(|| {
            crate::seccomp::program(input.allow)
                .iter()
                .map(|f| [u32::from(f.code), u32::from(f.jt), u32::from(f.jf), f.k])
                .collect()
        });
        JoinEntry {
            init_pid: 0,
            namespaces,
            pid_namespace_by_parent: !input.unprivileged,
            cgroup_procs: input.cgroup_procs,
            cgroup_namespace: hardened,
            mount_cgroup2: hardened && input.cgroup2,
            slot_userns: match (input.confinement, input.slot_userns) {
                (Confinement::SlotUserns, Some(fd)) => Some(PathBuf::from(format!(
                    "/proc/{}/fd/{fd}",
                    std::process::id()
                ))),
                _ => None,
            },
            nested_userns: input.confinement == Confinement::NestedUserns,
            seccomp,
            keep_capabilities: (input.confinement == Confinement::DockerCaps)
                .then_some(crate::confine::DOCKER_CAPS),
            drop_bounding: if hardened {
                vec![CAP_NET_ADMIN]
            } else {
                Vec::new()
            },
            user: if input.confinement == Confinement::NestedUserns {
                None
            } else {
                input.user
            },
            cwd: input.cwd.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(confinement: Confinement, unprivileged: bool) -> EntryInput<'static> {
        EntryInput {
            confinement,
            unprivileged,
            cgroup_procs: vec!["/sys/fs/cgroup/psy/a1/cgroup.procs".into()],
            cgroup2: true,
            slot_userns: Some(7),
            allow: crate::Allowances::default(),
            user: None,
            cwd: std::path::Path::new("/project"),
        }
    }

    #[test]
    fn root_enters_the_pid_namespace_for_its_child_and_joins_its_slot() {
        let entry = JoinEntry::new(input(Confinement::SlotUserns, false));
        assert!(entry.pid_namespace_by_parent);
        assert_eq!(entry.namespaces & libc::CLONE_NEWPID, 0);
        assert_eq!(entry.namespaces & libc::CLONE_NEWUSER, 0);
        assert_ne!(entry.namespaces & libc::CLONE_NEWNS, 0);
        assert_eq!(
            entry.slot_userns,
            Some(PathBuf::from(format!("/proc/{}/fd/7", std::process::id())))
        );
        assert!(entry.cgroup_namespace && entry.mount_cgroup2);
        assert!(entry.seccomp.as_ref().is_some_and(|p| p.len() > 10));
        assert_eq!(entry.drop_bounding, [CAP_NET_ADMIN]);
        assert_eq!(entry.keep_capabilities, None);
    }

    #[test]
    fn rootless_joins_the_inits_user_and_pid_namespaces_itself() {
        let entry = JoinEntry::new(input(Confinement::NestedUserns, true));
        assert!(!entry.pid_namespace_by_parent);
        assert_ne!(entry.namespaces & libc::CLONE_NEWUSER, 0);
        assert_ne!(entry.namespaces & libc::CLONE_NEWPID, 0);
        assert!(entry.nested_userns);
        assert_eq!(entry.slot_userns, None);
    }

    #[test]
    fn privileged_joins_without_confinement() {
        let entry = JoinEntry::new(input(Confinement::Privileged, false));
        assert!(entry.seccomp.is_none() && entry.drop_bounding.is_empty());
        assert!(!entry.cgroup_namespace && !entry.mount_cgroup2);
        let docker = JoinEntry::new(input(Confinement::DockerCaps, false));
        assert!(docker.keep_capabilities.is_some() && docker.seccomp.is_some());
    }
}
