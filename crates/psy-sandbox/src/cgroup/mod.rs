//! Resource limits for one test attempt: cgroup v1 and v2 behind one trait, chosen at runtime.
//!
//! [`detect`] reads `/proc` to find the host's setup ([`inspect`]) and prepares it ([`setup`]),
//! giving a [`CgroupDriver`] that creates one [`Cgroup`] per attempt under Psyduck's base
//! directory (`psyduck` in each v1 hierarchy or under the v2 root, or the caller's own delegated
//! v2 cgroup). Knobs the host lacks are skipped and listed by
//! [`CgroupDriver::missing_guarantees`] rather than failing.

mod blockdev;
mod detect;
mod error;
mod files;
mod io;
mod kill;
mod owner;
mod v1;
mod v2;

use std::path::{Path, PathBuf};
use std::time::Duration;

use psy_model::Resources;

pub use blockdev::{block_device_in, block_device_of};
pub use detect::{detect, inspect, setup, Detected, Layout, BASE_DIR_NAME, SUPERVISOR_LEAF};
pub use error::{CgroupError, FsOp};
pub use io::IoLimits;
pub use owner::Owner;
pub use v1::{V1Controller, V1Hierarchy};

/// CFS period used for CPU quotas (100 ms, the kernel default).
pub const CPU_PERIOD_US: u64 = 100_000;

/// Which cgroup API a driver speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// What one group may use. A zero means "not limited" for that resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    /// CFS quota of `cpu_millis * period / 1000` per 100 ms period, plus proportional
    /// `cpu.shares` / `cpu.weight` (1000 millis = 1024 shares = weight 100).
    pub cpu_millis: u32,
    /// Cores the group may run on (`cpuset.cpus`); `None` inherits the parent's set.
    pub exclusive_cores: Option<Vec<u32>>,
    /// Hard memory limit, swap included (no swapping past it).
    pub memory_bytes: u64,
    /// Maximum number of tasks (processes and threads).
    pub pids: u32,
    /// Disk throttles and weight for one device. On v1 only groups created with `Some` get a
    /// `blkio` directory (and IO stats); [`Cgroup::set_limits`] with `Some` on a group created
    /// without fails with [`CgroupError::MissingController`]. `None` clears earlier rules.
    pub io: Option<IoLimits>,
    /// The group can be frozen ([`Cgroup::freeze`]: a scenario's `psy fault pause`). On v1 this
    /// makes the group in the freezer hierarchy too, which ordinary attempts skip (it costs a
    /// directory and a membership write on the start path).
    pub freezable: bool,
}

impl CgroupLimits {
    /// Limits for an attempt with these resources, pinned to `cores` if given.
    pub fn from_resources(resources: &Resources, cores: Option<Vec<u32>>) -> Self {
        CgroupLimits {
            cpu_millis: resources.cpu_millis,
            exclusive_cores: cores,
            memory_bytes: resources.memory_bytes,
            pids: resources.pids,
            io: None,
            freezable: false,
        }
    }

    /// CFS quota in microseconds per [`CPU_PERIOD_US`], `None` for unlimited. The kernel's
    /// minimum quota is 1 ms.
    pub fn cpu_quota_us(&self) -> Option<u64> {
        (self.cpu_millis > 0).then(|| (u64::from(self.cpu_millis) * CPU_PERIOD_US / 1000).max(1000))
    }
}

/// Usage of a group, read before it is removed. `None` where the host cannot tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupStats {
    pub cpu_time: Option<Duration>,
    pub peak_memory_bytes: Option<u64>,
    /// The kernel OOM killer killed at least one process of the group.
    pub oom_killed: bool,
    /// Bytes and requests that reached block devices, summed over devices (v1: the group's
    /// `blkio` directory, present only for groups created with IO limits; v2: `io.stat`).
    /// Buffered writes count only once written back by a task of the group (e.g. its fsync);
    /// background writeback is not charged to the writer on v1.
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
    pub io_read_ops: Option<u64>,
    pub io_write_ops: Option<u64>,
}

/// What [`CgroupDriver::gc`] did.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Names (relative to the base) of the stale groups removed.
    pub removed: Vec<String>,
    /// Processes that were still running in them and got SIGKILL.
    pub killed_pids: usize,
    /// Stale groups that could not be removed, with why.
    pub failed: Vec<(String, CgroupError)>,
}

/// Creates and reclaims groups under Psyduck's base directory.
pub trait CgroupDriver: Send + Sync + std::fmt::Debug {
    fn version(&self) -> CgroupVersion;

    /// Creates `<base>/<name>` (`name` may contain `/`, e.g. `psy-<pid>-<run>/<attempt>`) with
    /// `limits` applied to the last component. An existing directory of that name is reused.
    fn create(&self, name: &str, limits: &CgroupLimits) -> Result<Box<dyn Cgroup>, CgroupError>;

    /// Kills every process in `<base>/<name>` and below, then removes those directories
    /// (e.g. a run's group once all its attempts are done). A missing group is not an error.
    fn remove_group(&self, name: &str) -> Result<(), CgroupError>;

    /// Kills and removes every direct child of the base named `<prefix>-<owner>-...` whose owner
    /// is gone (a crashed psy): `is_alive` judges each owner ([`owner_alive`] on a real host),
    /// depth-first. Failures of one group do not stop the others.
    fn gc(&self, is_alive: &dyn Fn(Owner) -> bool) -> Result<GcReport, CgroupError>;

    /// Guarantees this host cannot enforce, worded for a one-time warning.
    fn missing_guarantees(&self) -> Vec<String>;
}

/// One created group. Dropping it leaves the directories behind (see [`Cgroup::remove`]).
pub trait Cgroup: Send + std::fmt::Debug {
    /// Files a process writes `"0"` to in order to move itself into the group (one per v1
    /// hierarchy). Open them `O_WRONLY` before `clone()` so the child needs no path lookup.
    fn procs_files(&self) -> Vec<PathBuf>;

    /// Moves process `pid` (all its threads) into the group.
    fn add_pid(&self, pid: u32) -> Result<(), CgroupError>;

    /// SIGKILLs every process in the group (and below) until it is empty.
    fn kill_all(&self) -> Result<(), CgroupError>;

    /// Freezes (`true`) or thaws every process of the group, waiting briefly until the kernel
    /// says it is frozen (a scenario's `psy fault pause`).
    fn freeze(&self, frozen: bool) -> Result<(), CgroupError>;

    /// CPU time, peak memory and OOM kills so far; read before [`Cgroup::remove`].
    fn stats(&self) -> Result<CgroupStats, CgroupError>;

    /// Pids in the group and its sub-groups, sorted.
    fn pids(&self) -> Result<Vec<u32>, CgroupError>;

    /// Writes `limits` into the group (for groups made ahead of time, blank). Exclusive cores
    /// need a cpuset, which only groups created with them have (see `set_cores`).
    fn set_limits(&self, limits: &CgroupLimits) -> Result<(), CgroupError>;

    /// Moves the group onto `cores` (its cpuset), e.g. when exclusive attempts take cores away
    /// from the shared ones. A no-op for a group without a cpuset.
    fn set_cores(&self, cores: &[u32]) -> Result<(), CgroupError>;

    /// Kills stragglers and removes the group's directories (in every v1 hierarchy). Parents
    /// created by `create` stay (see [`CgroupDriver::remove_group`]).
    fn remove(self: Box<Self>) -> Result<(), CgroupError>;
}

/// The group name for run `run` of process `pid` of this PID namespace: `<prefix>-<owner>-<run>`
/// (see [`Owner::token`]), the shape [`CgroupDriver::gc`] recognises.
pub fn run_group_name(prefix: &str, pid: u32, run: &str) -> String {
    let owner = Owner {
        pid,
        pid_ns: Owner::current().pid_ns,
    };
    format!("{prefix}-{}-{run}", owner.token())
}

/// Whether `<proc_root>/<pid>` exists.
pub fn pid_alive_in(proc_root: &Path) -> impl Fn(u32) -> bool + '_ {
    move |pid| proc_root.join(pid.to_string()).exists()
}

/// The `is_alive` of [`CgroupDriver::gc`] on a real host: [`Owner::may_be_alive`], with pids of
/// our own PID namespace looked up under `proc_root`.
pub fn owner_alive(proc_root: &Path) -> impl Fn(Owner) -> bool + '_ {
    move |owner| owner.may_be_alive(&pid_alive_in(proc_root))
}

/// Shared gc loop: `reclaim(name)` kills and removes one stale group, returning pids killed.
fn gc_children(
    prefix: &str,
    names: Vec<String>,
    is_alive: &dyn Fn(Owner) -> bool,
    reclaim: &dyn Fn(&str) -> Result<usize, CgroupError>,
) -> GcReport {
    let mut report = GcReport::default();
    for name in names {
        let Some(owner) = Owner::from_group_name(prefix, &name) else {
            continue;
        };
        if is_alive(owner) {
            continue;
        }
        let pid = owner.token();
        match reclaim(&name) {
            Ok(killed) => {
                tracing::info!(group = %name, killed, "removed stale cgroup of dead psy {pid}");
                report.killed_pids += killed;
                report.removed.push(name);
            }
            Err(e) => {
                tracing::warn!(group = %name, error = %e, "cannot remove stale cgroup");
                report.failed.push((name, e));
            }
        }
    }
    report
}

/// Rejects names that would escape the base or collide with cgroupfs files.
fn validate_name(name: &str) -> Result<(), CgroupError> {
    let why = if name.is_empty() {
        Some("empty")
    } else if name.starts_with('/') || name.ends_with('/') {
        Some("must be relative, without a trailing '/'")
    } else if name
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        Some("empty, '.' or '..' component")
    } else if name.contains('\n') {
        Some("contains a newline")
    } else {
        None
    };
    match why {
        Some(why) => Err(CgroupError::InvalidName {
            name: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for ok in ["psy-1-a", "psy-1-a/0", "a.b/c"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "/abs", "a/", "a//b", "a/../b", "..", "a\nb"] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn quota_follows_millis() {
        let mut l = CgroupLimits {
            cpu_millis: 500,
            ..Default::default()
        };
        assert_eq!(l.cpu_quota_us(), Some(50_000));
        l.cpu_millis = 2500;
        assert_eq!(l.cpu_quota_us(), Some(250_000));
        l.cpu_millis = 1;
        assert_eq!(l.cpu_quota_us(), Some(1000));
        l.cpu_millis = 0;
        assert_eq!(l.cpu_quota_us(), None);
    }

    #[test]
    fn gc_loop_skips_live_and_foreign_groups() {
        let names = ["psy-1-a", "psy-2-b", "other", "psy-3-c"]
            .map(String::from)
            .to_vec();
        let report = gc_children("psy", names, &|o| o.pid == 2, &|name| {
            if name == "psy-3-c" {
                Err(CgroupError::InvalidName {
                    name: name.into(),
                    why: "test",
                })
            } else {
                Ok(4)
            }
        });
        assert_eq!(report.removed, vec!["psy-1-a"]);
        assert_eq!(report.killed_pids, 4);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0, "psy-3-c");
    }
}
