//! cgroup v1: one `psyduck` directory per controller hierarchy, a group is one leaf in each.

mod group;
mod limits;

use std::path::{Path, PathBuf};

use super::detect::BASE_DIR_NAME;
use super::error::CgroupError;
use super::{files, gc_children, validate_name};
use super::{Cgroup, CgroupDriver, CgroupLimits, CgroupVersion, GcReport};

pub(crate) use group::V1Group;

/// The v1 controllers Psyduck uses (others, like devices or blkio, are left alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum V1Controller {
    Cpu,
    Cpuacct,
    Cpuset,
    Memory,
    Pids,
    Freezer,
}

impl V1Controller {
    pub const ALL: [V1Controller; 6] = [
        V1Controller::Cpu,
        V1Controller::Cpuacct,
        V1Controller::Cpuset,
        V1Controller::Memory,
        V1Controller::Pids,
        V1Controller::Freezer,
    ];

    /// The name used in mount options and `/proc/self/cgroup`.
    pub fn name(self) -> &'static str {
        match self {
            V1Controller::Cpu => "cpu",
            V1Controller::Cpuacct => "cpuacct",
            V1Controller::Cpuset => "cpuset",
            V1Controller::Memory => "memory",
            V1Controller::Pids => "pids",
            V1Controller::Freezer => "freezer",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A mounted v1 hierarchy (several controllers may share one, e.g. `cpu,cpuacct`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1Hierarchy {
    pub mount: PathBuf,
    /// Sorted.
    pub controllers: Vec<V1Controller>,
}

/// One hierarchy's `psyduck` directory.
#[derive(Clone, Debug)]
pub(crate) struct Base {
    pub(crate) dir: PathBuf,
    pub(crate) controllers: Vec<V1Controller>,
}

impl Base {
    pub(crate) fn has(&self, c: V1Controller) -> bool {
        self.controllers.contains(&c)
    }
}

/// The v1 [`CgroupDriver`].
#[derive(Debug)]
pub(crate) struct V1Driver {
    prefix: String,
    bases: Vec<Base>,
    missing: Vec<String>,
}

impl V1Driver {
    /// Creates `<mount>/psyduck` in each hierarchy, ready to hold groups.
    pub(crate) fn setup(hierarchies: &[V1Hierarchy], prefix: &str) -> Result<Self, CgroupError> {
        let mut bases = Vec::new();
        for h in hierarchies {
            let dir = h.mount.join(BASE_DIR_NAME);
            files::mkdir(&dir)?;
            limits::prepare_dir(&dir, &h.controllers)?;
            bases.push(Base {
                dir,
                controllers: h.controllers.clone(),
            });
        }
        Ok(Self::new(bases, prefix))
    }

    fn new(bases: Vec<Base>, prefix: &str) -> Self {
        let missing = missing_guarantees(&bases);
        for m in &missing {
            tracing::debug!(missing = %m, "cgroup v1 guarantee unavailable");
        }
        V1Driver {
            prefix: prefix.to_owned(),
            bases,
            missing,
        }
    }

    fn group(&self, name: &str) -> V1Group {
        V1Group::new(name, &self.bases)
    }
}

impl CgroupDriver for V1Driver {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn create(&self, name: &str, limits: &CgroupLimits) -> Result<Box<dyn Cgroup>, CgroupError> {
        validate_name(name)?;
        let group = self.group(name);
        let created = (|| {
            for base in &self.bases {
                let controllers = &base.controllers;
                files::make_path(&base.dir, name, &mut |dir, is_leaf| {
                    limits::prepare_dir(dir, controllers)?;
                    if is_leaf {
                        limits::apply(dir, controllers, limits)?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })();
        match created {
            Ok(()) => Ok(Box::new(group)),
            Err(e) => {
                // Leave no half-made group behind (nothing runs in it yet).
                if let Err(cleanup) = Box::new(group).remove() {
                    tracing::warn!(error = %cleanup, "cannot clean up half-created cgroup");
                }
                Err(e)
            }
        }
    }

    fn remove_group(&self, name: &str) -> Result<(), CgroupError> {
        validate_name(name)?;
        Box::new(self.group(name)).remove()
    }

    fn gc(&self, is_alive: &dyn Fn(u32) -> bool) -> Result<GcReport, CgroupError> {
        let mut names = Vec::new();
        for base in &self.bases {
            names.extend(files::child_dirs(&base.dir)?);
        }
        names.sort();
        names.dedup();
        Ok(gc_children(&self.prefix, names, is_alive, &|name| {
            let group = self.group(name);
            let killed = group.kill_counting()?;
            Box::new(group).remove()?;
            Ok(killed)
        }))
    }

    fn missing_guarantees(&self) -> Vec<String> {
        self.missing.clone()
    }
}

fn missing_guarantees(bases: &[Base]) -> Vec<String> {
    let find = |c: V1Controller| bases.iter().find(|b| b.has(c)).map(|b| b.dir.as_path());
    let absent = |dir: &Path, file: &str| !dir.join(file).exists();
    let mut missing = Vec::new();
    match find(V1Controller::Cpu) {
        None => missing.push("cpu limits: no cpu controller".to_owned()),
        Some(dir) if absent(dir, "cpu.cfs_quota_us") => missing.push(
            "cpu limits: kernel lacks CFS bandwidth control (no cpu.cfs_quota_us); \
             only proportional cpu.shares apply"
                .to_owned(),
        ),
        Some(_) => {}
    }
    if find(V1Controller::Cpuset).is_none() {
        missing.push("exclusive cores: no cpuset controller".to_owned());
    }
    match find(V1Controller::Memory) {
        None => missing.push("memory limits: no memory controller".to_owned()),
        Some(dir) if absent(dir, "memory.memsw.limit_in_bytes") => missing.push(
            "memory limits: swap is not limited (no memory.memsw.limit_in_bytes; boot with \
             swapaccount=1)"
                .to_owned(),
        ),
        Some(_) => {}
    }
    if find(V1Controller::Pids).is_none() {
        missing.push("process limits: no pids controller".to_owned());
    }
    if find(V1Controller::Freezer).is_none() {
        missing.push(
            "reliable kill: no freezer controller; a fast-forking test may outlive one kill pass"
                .to_owned(),
        );
    }
    if find(V1Controller::Cpuacct).is_none() {
        missing.push("cpu time stats: no cpuacct controller".to_owned());
    }
    missing
}

#[cfg(test)]
mod tests;
