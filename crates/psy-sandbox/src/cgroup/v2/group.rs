//! A v2 group: one directory under the base.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cgroup::error::CgroupError;
use crate::cgroup::kill::{self, KillRound};
use crate::cgroup::{files, Cgroup, CgroupLimits, CgroupStats};

/// A group created by the v2 driver (or a stale one found by gc).
#[derive(Debug)]
pub(crate) struct V2Group {
    dir: PathBuf,
    /// Controllers available to the group (for writing limits later).
    enabled: Vec<String>,
}

impl V2Group {
    pub(crate) fn new(base: &Path, name: &str, enabled: &[String]) -> Self {
        V2Group {
            dir: base.join(name),
            enabled: enabled.to_vec(),
        }
    }

    /// [`Cgroup::kill_all`], returning how many pids were killed.
    pub(crate) fn kill_counting(&self) -> Result<usize, CgroupError> {
        let list = || self.pids();
        let kill_file = self.dir.join("cgroup.kill");
        if kill_file.exists() {
            let kill = || files::write(&kill_file, "1");
            return kill::kill_until_empty(&self.dir, &list, KillRound::KillFile(&kill));
        }
        let freeze_file = self.dir.join("cgroup.freeze");
        if freeze_file.exists() {
            let events = self.dir.join("cgroup.events");
            let freeze = |frozen: bool| set_frozen(&freeze_file, &events, frozen);
            let round = KillRound::Signal {
                freeze: Some(&freeze),
            };
            return kill::kill_until_empty(&self.dir, &list, round);
        }
        kill::kill_until_empty(&self.dir, &list, KillRound::Signal { freeze: None })
    }
}

fn set_frozen(freeze: &Path, events: &Path, frozen: bool) -> Result<(), CgroupError> {
    files::write(freeze, if frozen { "1" } else { "0" })?;
    if frozen {
        let settled = kill::wait_briefly(&|| match files::read_optional(events)? {
            Some(text) => Ok(files::keyed_value(events, &text, "frozen")? == Some(1)),
            None => Ok(true),
        })?;
        if !settled {
            tracing::debug!(path = %freeze.display(), "group not frozen yet; killing anyway");
        }
    }
    Ok(())
}

impl Cgroup for V2Group {
    fn set_limits(&self, limits: &CgroupLimits) -> Result<(), CgroupError> {
        super::limits::apply(&self.dir, &self.enabled, limits)
    }

    fn set_cores(&self, cores: &[u32]) -> Result<(), CgroupError> {
        let list: Vec<String> = cores.iter().map(u32::to_string).collect();
        files::write_optional(&self.dir.join("cpuset.cpus"), &list.join(",")).map(drop)
    }

    fn procs_files(&self) -> Vec<PathBuf> {
        vec![self.dir.join("cgroup.procs")]
    }

    fn add_pid(&self, pid: u32) -> Result<(), CgroupError> {
        files::write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        self.kill_counting().map(drop)
    }

    fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let events = self.dir.join("cgroup.events");
        set_frozen(&self.dir.join("cgroup.freeze"), &events, frozen)
    }

    fn stats(&self) -> Result<CgroupStats, CgroupError> {
        let mut stats = CgroupStats::default();
        let cpu = self.dir.join("cpu.stat");
        if let Some(text) = files::read_optional(&cpu)? {
            stats.cpu_time =
                files::keyed_value(&cpu, &text, "usage_usec")?.map(Duration::from_micros);
        }
        let peak = self.dir.join("memory.peak");
        if let Some(text) = files::read_optional(&peak)? {
            stats.peak_memory_bytes = Some(files::parse_u64(&peak, &text)?);
        }
        let events = self.dir.join("memory.events");
        if let Some(text) = files::read_optional(&events)? {
            stats.oom_killed = files::keyed_value(&events, &text, "oom_kill")?.unwrap_or(0) > 0;
        }
        let io_stat = self.dir.join("io.stat");
        if let Some(text) = files::read_optional(&io_stat)? {
            crate::cgroup::io::v2_stat(&io_stat, &text)?.fill(&mut stats);
        }
        Ok(stats)
    }

    fn pids(&self) -> Result<Vec<u32>, CgroupError> {
        files::subtree_pids(&self.dir, "cgroup.procs")
    }

    fn remove(self: Box<Self>) -> Result<(), CgroupError> {
        let killed = self.kill_all();
        let removed = files::subtree_post_order(&self.dir)
            .and_then(|dirs| dirs.iter().try_for_each(|dir| files::rmdir_retry(dir)));
        killed.and(removed)
    }
}
