//! The naive peer of `psy bench makespan`: the suite's commands run bare by `xargs -P <cores>`,
//! ignoring declared resources. It is confined to one memory cgroup no larger than what the
//! host can spare, so when it overcommits, the cgroup's OOM killer picks one of its own tests
//! instead of the host's killing unrelated processes.

use anyhow::{ensure, Context};
use psy_sandbox::cgroup::{self, CgroupLimits};
use psy_sandbox::CGROUP_PREFIX;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Exit status of a shell whose child was SIGKILLed (128 + 9): what the OOM killer leaves.
const KILLED: i32 = 137;

/// What the naive run did.
#[derive(Debug)]
pub(crate) struct NaiveOutcome {
    pub(crate) wall: Duration,
    /// Exit status of each test's command, by test name.
    pub(crate) status: BTreeMap<String, i32>,
    /// The cgroup recorded at least one OOM kill.
    pub(crate) cgroup_oom: bool,
}

impl NaiveOutcome {
    /// Tests killed by SIGKILL (only the OOM killer sends it here).
    pub(crate) fn oom_killed(&self) -> Vec<&str> {
        self.status
            .iter()
            .filter(|(_, &s)| s == KILLED)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    pub(crate) fn failed(&self) -> usize {
        self.status.values().filter(|&&s| s != 0).count()
    }
}

/// Runs `sh tests/<name>.sh` for every name, in order, `cores` at a time, from `project` inside
/// a fresh memory cgroup of `memory_limit` bytes (swap included).
pub(crate) fn run(
    project: &Path,
    names: &[String],
    cores: usize,
    memory_limit: u64,
) -> anyhow::Result<NaiveOutcome> {
    let driver = cgroup::detect(Path::new("/proc"), CGROUP_PREFIX)
        .context("detecting cgroups for the naive peer")?
        .driver
        .context("no usable memory cgroup: refusing to run the naive peer unconfined")?;
    // Named like psy's own groups so `psy gc` reclaims it if this process dies.
    let name = cgroup::run_group_name(CGROUP_PREFIX, std::process::id(), "bench-naive");
    let limits = CgroupLimits {
        memory_bytes: memory_limit,
        ..CgroupLimits::default()
    };
    let group = driver
        .create(&name, &limits)
        .with_context(|| format!("creating cgroup {name}"))?;
    let result = run_in(&group.procs_files(), project, names, cores);
    let cgroup_oom = group.stats().map(|s| s.oom_killed).unwrap_or(false);
    if let Err(e) = group.remove() {
        tracing::warn!("cannot remove cgroup {name}: {e}");
    }
    let (wall, status) = result?;
    Ok(NaiveOutcome {
        wall,
        status,
        cgroup_oom,
    })
}

fn run_in(
    procs_files: &[std::path::PathBuf],
    project: &Path,
    names: &[String],
    cores: usize,
) -> anyhow::Result<(Duration, BTreeMap<String, i32>)> {
    let files: Vec<File> = procs_files
        .iter()
        .map(|p| {
            OpenOptions::new()
                .write(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    let fds: Vec<RawFd> = files.iter().map(AsRawFd::as_raw_fd).collect();
    // The shells' "Killed" notices would only clutter the table.
    let log = project.join("naive.log");
    let stderr = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut cmd = Command::new("xargs");
    cmd.args(["-P", &cores.to_string(), "-n", "1", "sh", "-c"])
        .arg(r#"sh "tests/$0.sh"; echo "$0 $?""#)
        .current_dir(project)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr);
    // SAFETY: the hook only calls write(2) on descriptors opened above, which stay open in the
    // parent until spawn returns; writing "0" moves the child into the group before it execs.
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
    let input: String = names.iter().map(|n| format!("{n}\n")).collect();
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .context("starting xargs in the naive peer's cgroup")?;
    drop(files);
    super::harness::feed_xargs(&mut child, &input)?;
    let out = child.wait_with_output().context("waiting for xargs")?;
    let wall = started.elapsed();
    ensure!(out.status.success(), "xargs failed ({})", out.status);
    let mut status = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((name, code)) = line.rsplit_once(' ') {
            status.insert(name.to_string(), code.parse().unwrap_or(-1));
        }
    }
    ensure!(
        status.len() == names.len(),
        "the naive peer reported {} of {} tests",
        status.len(),
        names.len()
    );
    Ok((wall, status))
}
