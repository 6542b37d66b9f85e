//! Preparing the v2 base: enabling controllers and, for a delegated subtree, vacating it.

use std::path::Path;

use super::WANTED;
use crate::cgroup::detect::SUPERVISOR_LEAF;
use crate::cgroup::error::CgroupError;
use crate::cgroup::files;

/// Result of enabling controllers in one directory's `cgroup.subtree_control`.
#[derive(Debug, Default)]
pub(crate) struct Enabled {
    /// Wanted controllers now enabled for the directory's children.
    pub(crate) controllers: Vec<String>,
    /// Why the others are not, worded for `missing_guarantees`.
    pub(crate) problems: Vec<String>,
}

/// Enables each of `wanted` that `dir/cgroup.controllers` offers. A controller that cannot be
/// enabled (e.g. EBUSY because `dir` still holds processes) is reported, not fatal.
pub(crate) fn enable(dir: &Path, wanted: &[&str]) -> Result<Enabled, CgroupError> {
    let list = |file: &str| -> Result<Vec<String>, CgroupError> {
        let text = files::read(&dir.join(file))?;
        Ok(text.split_whitespace().map(str::to_owned).collect())
    };
    let available = list("cgroup.controllers")?;
    let already = list("cgroup.subtree_control")?;
    let control = dir.join("cgroup.subtree_control");
    let mut out = Enabled::default();
    let mut todo = Vec::new();
    for &c in wanted {
        if already.iter().any(|a| a == c) {
            out.controllers.push(c.to_owned());
        } else if available.iter().any(|a| a == c) {
            todo.push(c);
        } else {
            out.problems.push(format!(
                "{c} controller not offered in {}",
                dir.join("cgroup.controllers").display()
            ));
        }
    }
    if todo.is_empty() {
        return Ok(out);
    }
    let all: Vec<String> = todo.iter().map(|c| format!("+{c}")).collect();
    if files::write(&control, &all.join(" ")).is_ok() {
        out.controllers.extend(todo.iter().map(|c| c.to_string()));
        return Ok(out);
    }
    // One by one, to learn which controller the kernel refused and why.
    for c in todo {
        match files::write(&control, &format!("+{c}")) {
            Ok(()) => out.controllers.push(c.to_owned()),
            Err(e) => {
                let hint = if e.raw_os_error() == Some(libc::EBUSY) {
                    " (the cgroup still holds processes; start psy in its own scope)"
                } else {
                    ""
                };
                out.problems.push(format!("{c} controller: {e}{hint}"));
            }
        }
    }
    Ok(out)
}

/// Moves `pid` into `own/supervisor`, creating it, and with it every other process still in
/// `own`: psy's zygote (forked before the driver exists) or anything else started in psy's scope
/// would keep `own` from enabling controllers ("no internal processes").
pub(crate) fn move_into_leaf(own: &Path, pid: u32) -> Result<(), CgroupError> {
    let leaf = own.join(SUPERVISOR_LEAF);
    files::mkdir(&leaf)?;
    let procs = leaf.join("cgroup.procs");
    files::write(&procs, &pid.to_string())?;
    for other in files::read_pids(&own.join("cgroup.procs"))? {
        match files::write(&procs, &other.to_string()) {
            // It exited since the listing.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            result => result?,
        }
    }
    tracing::debug!(leaf = %leaf.display(), pid, "moved psy into its supervisor cgroup");
    Ok(())
}

/// Human-readable gaps, given what `base` offers its children.
pub(crate) fn missing_guarantees(
    base: &Path,
    enabled: &[String],
    problems: Vec<String>,
) -> Vec<String> {
    let on = |c: &str| enabled.iter().any(|e| e == c);
    let mut missing = Vec::new();
    for c in WANTED {
        if !on(c) {
            let what = match c {
                "cpu" => "cpu limits",
                "cpuset" => "exclusive cores",
                "memory" => "memory limits",
                "io" => "io limits",
                _ => "process limits",
            };
            missing.push(format!(
                "{what}: {c} controller not enabled in {}",
                base.join("cgroup.subtree_control").display()
            ));
        }
    }
    missing.extend(problems.into_iter().map(|p| format!("cgroup setup: {p}")));
    // The base got its memory files from its own parent; its children get the same set.
    if on("memory") && !base.join("memory.swap.max").exists() {
        missing.push(
            "memory limits: swap is not limited (no memory.swap.max; swap accounting off)"
                .to_owned(),
        );
    }
    if on("memory") && !base.join("memory.peak").exists() {
        missing.push("peak memory stats: kernel lacks memory.peak (Linux < 5.19)".to_owned());
    }
    if on("io") && !base.join("io.max").exists() {
        missing.push(
            "io limits: kernel lacks io.max (CONFIG_BLK_DEV_THROTTLING); only io stats".to_owned(),
        );
    }
    if on("io") && !base.join("io.weight").exists() && !base.join("io.bfq.weight").exists() {
        missing.push(
            "io weight: no io.weight or io.bfq.weight (no io.cost or BFQ); only io throttles \
             apply"
                .to_owned(),
        );
    }
    if !base.join("cgroup.kill").exists() && !base.join("cgroup.freeze").exists() {
        missing.push(
            "reliable kill: no cgroup.kill or cgroup.freeze (Linux < 5.2); a fast-forking test \
             may outlive one kill pass"
                .to_owned(),
        );
    }
    missing
}
