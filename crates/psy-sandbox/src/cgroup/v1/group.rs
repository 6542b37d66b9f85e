//! A v1 group: the same relative directory in every hierarchy Psyduck uses.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Base, V1Controller};
use crate::cgroup::error::CgroupError;
use crate::cgroup::io::{self, IoCounters};
use crate::cgroup::kill::{self, KillRound};
use crate::cgroup::{files, Cgroup, CgroupLimits, CgroupStats};

#[derive(Clone, Debug)]
struct GroupDir {
    leaf: PathBuf,
    controllers: Vec<V1Controller>,
}

/// A group created by the v1 driver (or a stale one found by gc).
#[derive(Debug)]
pub(crate) struct V1Group {
    dirs: Vec<GroupDir>,
}

impl V1Group {
    pub(crate) fn new(name: &str, bases: &[Base]) -> Self {
        let dirs = bases
            .iter()
            .map(|b| GroupDir {
                leaf: b.dir.join(name),
                controllers: b.controllers.clone(),
            })
            .collect();
        V1Group { dirs }
    }

    fn dir(&self, c: V1Controller) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.controllers.contains(&c))
            .map(|d| d.leaf.as_path())
    }

    /// [`Cgroup::kill_all`], returning how many pids were signalled.
    pub(crate) fn kill_counting(&self) -> Result<usize, CgroupError> {
        let list = || self.pids();
        let primary = self
            .dirs
            .first()
            .map_or_else(PathBuf::new, |d| d.leaf.clone());
        match self.dir(V1Controller::Freezer) {
            Some(freezer) => {
                let state = freezer.join("freezer.state");
                let freeze = |frozen: bool| set_frozen(&state, frozen);
                let round = KillRound::Signal {
                    freeze: Some(&freeze),
                };
                kill::kill_until_empty(&primary, &list, round)
            }
            None => kill::kill_until_empty(&primary, &list, KillRound::Signal { freeze: None }),
        }
    }
}

/// Freezes (waiting briefly for FREEZING to settle) or thaws a v1 freezer group, which also
/// covers its descendants.
fn set_frozen(state: &Path, frozen: bool) -> Result<(), CgroupError> {
    if !frozen {
        return files::write(state, "THAWED");
    }
    files::write(state, "FROZEN")?;
    let settled = kill::wait_briefly(&|| {
        let current = files::read_optional(state)?;
        Ok(!matches!(current, Some(s) if s.trim() != "FROZEN"))
    })?;
    if !settled {
        // A task in uninterruptible sleep keeps the group FREEZING; kill what we can anyway.
        tracing::debug!(path = %state.display(), "freezer still FREEZING; killing anyway");
    }
    Ok(())
}

impl Cgroup for V1Group {
    fn set_limits(&self, limits: &CgroupLimits) -> Result<(), CgroupError> {
        if limits.io.is_some() && self.dir(V1Controller::Blkio).is_none() {
            return Err(CgroupError::MissingController {
                controller: "blkio",
                what: "io limits",
                group: self
                    .dirs
                    .first()
                    .map_or_else(PathBuf::new, |d| d.leaf.clone()),
            });
        }
        self.dirs
            .iter()
            .try_for_each(|d| super::limits::apply(&d.leaf, &d.controllers, limits))
    }

    fn set_cores(&self, cores: &[u32]) -> Result<(), CgroupError> {
        match self.dir(V1Controller::Cpuset) {
            Some(dir) => files::write(&dir.join("cpuset.cpus"), &super::limits::cpu_list(cores)),
            None => Ok(()),
        }
    }

    fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|d| d.leaf.join("cgroup.procs"))
            .collect()
    }

    fn add_pid(&self, pid: u32) -> Result<(), CgroupError> {
        for procs in self.procs_files() {
            files::write(&procs, &pid.to_string())?;
        }
        Ok(())
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        self.kill_counting().map(drop)
    }

    fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let group = self
            .dirs
            .first()
            .map_or_else(PathBuf::new, |d| d.leaf.clone());
        let freezer = self
            .dir(V1Controller::Freezer)
            .ok_or(CgroupError::MissingController {
                controller: "freezer",
                what: "pausing",
                group,
            })?;
        set_frozen(&freezer.join("freezer.state"), frozen)
    }

    fn stats(&self) -> Result<CgroupStats, CgroupError> {
        let mut stats = CgroupStats::default();
        if let Some(dir) = self.dir(V1Controller::Cpuacct) {
            let path = dir.join("cpuacct.usage");
            if let Some(text) = files::read_optional(&path)? {
                stats.cpu_time = Some(Duration::from_nanos(files::parse_u64(&path, &text)?));
            }
        }
        if let Some(dir) = self.dir(V1Controller::Memory) {
            let path = dir.join("memory.max_usage_in_bytes");
            if let Some(text) = files::read_optional(&path)? {
                stats.peak_memory_bytes = Some(files::parse_u64(&path, &text)?);
            }
            stats.oom_killed = oom_killed(dir)?;
        }
        if let Some(dir) = self.dir(V1Controller::Blkio) {
            io_counters(dir)?.fill(&mut stats);
        }
        Ok(stats)
    }

    fn pids(&self) -> Result<Vec<u32>, CgroupError> {
        let mut pids = Vec::new();
        for d in &self.dirs {
            pids.extend(files::subtree_pids(&d.leaf, "cgroup.procs")?);
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn remove(self: Box<Self>) -> Result<(), CgroupError> {
        // Fast path: the group is empty (its PID namespace is gone) and has no children.
        let all_removed = self
            .dirs
            .iter()
            .all(|d| match std::fs::remove_dir(&d.leaf) {
                Ok(()) => true,
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            });
        if all_removed {
            return Ok(());
        }
        let killed = self.kill_all();
        let mut first_err = killed.err();
        for d in &self.dirs {
            let removed = files::subtree_post_order(&d.leaf)
                .and_then(|dirs| dirs.iter().try_for_each(|dir| files::rmdir_retry(dir)));
            if let Err(e) = removed {
                tracing::warn!(error = %e, "cannot remove cgroup directory");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Throttle-layer counters, which see every bio of the group whether or not a rule applies.
/// The recursive files (Linux 4.x+) also cover sub-groups a test may have made.
fn io_counters(dir: &Path) -> Result<IoCounters, CgroupError> {
    let mut out = IoCounters::default();
    for (stem, read, write) in [
        (
            "blkio.throttle.io_service_bytes",
            &mut out.read_bytes,
            &mut out.write_bytes,
        ),
        (
            "blkio.throttle.io_serviced",
            &mut out.read_ops,
            &mut out.write_ops,
        ),
    ] {
        for name in [format!("{stem}_recursive"), stem.to_owned()] {
            let path = dir.join(name);
            if let Some(text) = files::read_optional(&path)? {
                *read = Some(io::v1_stat_sum(&path, &text, "Read")?);
                *write = Some(io::v1_stat_sum(&path, &text, "Write")?);
                break;
            }
        }
    }
    Ok(out)
}

/// `oom_kill N` in `memory.oom_control` (Linux 4.13+). Older kernels lack the line; then a
/// non-zero `memory.failcnt` is used, which over-reports: it counts every time usage hit the
/// limit, including times reclaim succeeded without killing anything.
fn oom_killed(dir: &Path) -> Result<bool, CgroupError> {
    let control = dir.join("memory.oom_control");
    if let Some(text) = files::read_optional(&control)? {
        if let Some(n) = files::keyed_value(&control, &text, "oom_kill")? {
            return Ok(n > 0);
        }
    }
    let failcnt = dir.join("memory.failcnt");
    match files::read_optional(&failcnt)? {
        Some(text) => Ok(files::parse_u64(&failcnt, &text)? > 0),
        None => Ok(false),
    }
}
