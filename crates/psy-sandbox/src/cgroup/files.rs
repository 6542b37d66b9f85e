//! Small cgroupfs file helpers: every failure is turned into a [`CgroupError`] naming the path.
//!
//! Cgroup directories are pseudo-files: a missing file means "this kernel or controller does not
//! offer that knob", so the `*_optional` variants map `ENOENT` to `None`/`false` instead of an error.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{CgroupError, FsOp};

pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|e| CgroupError::io(FsOp::Read, path, e))
}

pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CgroupError::io(FsOp::Read, path, e)),
    }
}

fn try_write(path: &Path, value: &str) -> std::io::Result<()> {
    // One write(2) per value: cgroupfs parses each write on its own, so a buffered writer that
    // split the value would corrupt it. Never create: a missing knob must stay missing.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    file.write_all(value.as_bytes())
}

pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    tracing::trace!(path = %path.display(), value, "cgroup write");
    try_write(path, value).map_err(|e| CgroupError::io(FsOp::Write(value.to_owned()), path, e))
}

/// Writes if the file exists; `Ok(false)` when it does not.
pub(crate) fn write_optional(path: &Path, value: &str) -> Result<bool, CgroupError> {
    match try_write(path, value) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            tracing::debug!(path = %path.display(), "cgroup knob absent, skipped");
            Ok(false)
        }
        Err(e) => Err(CgroupError::io(FsOp::Write(value.to_owned()), path, e)),
    }
}

/// `mkdir`; `Ok(false)` if it already existed.
pub(crate) fn mkdir(path: &Path) -> Result<bool, CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(CgroupError::io(FsOp::CreateDir, path, e)),
    }
}

/// Creates `base/rel` one component at a time, calling `prepare(dir, is_leaf)` on every component
/// (new or not) so per-level setup (v1 cpuset, v2 subtree_control) also repairs half-made parents.
/// A concurrent `remove_group` may rmdir a parent between our steps (ENOENT): start over then.
pub(crate) fn make_path(
    base: &Path,
    rel: &str,
    prepare: &mut dyn FnMut(&Path, bool) -> Result<(), CgroupError>,
) -> Result<PathBuf, CgroupError> {
    let parts: Vec<&str> = rel.split('/').collect();
    let mut attempts = 0;
    'retry: loop {
        let mut dir = base.to_path_buf();
        for (i, part) in parts.iter().enumerate() {
            dir.push(part);
            match mkdir(&dir) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && attempts < 5 => {
                    attempts += 1;
                    continue 'retry;
                }
                Err(e) => return Err(e),
                // A name like "cgroup.procs" or "tasks" collides with a cgroupfs file.
                Ok(false) if !dir.is_dir() => {
                    let e = std::io::Error::from(ErrorKind::AlreadyExists);
                    return Err(CgroupError::io(FsOp::CreateDir, &dir, e));
                }
                Ok(_) => prepare(&dir, i + 1 == parts.len())?,
            }
        }
        return Ok(dir);
    }
}

/// `rmdir` that tolerates a missing directory and retries while the kernel still reports the
/// group busy (exiting tasks are unlinked from the cgroup asynchronously).
pub(crate) fn rmdir_retry(path: &Path) -> Result<(), CgroupError> {
    let mut delay = Duration::from_millis(1);
    for attempt in 0.. {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 30 => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(CgroupError::io(FsOp::RemoveDir, path, e)),
        }
    }
    unreachable!("the retry loop only ends by returning")
}

/// `dir` and every cgroup below it, children before parents (the order rmdir needs).
pub(crate) fn subtree_post_order(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut out = Vec::new();
    collect_post_order(dir, &mut out)?;
    Ok(out)
}

fn collect_post_order(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CgroupError::io(FsOp::ListDir, dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| CgroupError::io(FsOp::ListDir, dir, e))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            collect_post_order(&entry.path(), out)?;
        }
    }
    out.push(dir.to_path_buf());
    Ok(())
}

/// Names of the direct sub-directories of `dir` (empty if `dir` does not exist).
pub(crate) fn child_dirs(dir: &Path) -> Result<Vec<String>, CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CgroupError::io(FsOp::ListDir, dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CgroupError::io(FsOp::ListDir, dir, e))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            names.extend(entry.file_name().to_str().map(str::to_owned));
        }
    }
    Ok(names)
}

/// Pids listed in `procs` (a `cgroup.procs` file); a vanished group has none.
pub(crate) fn read_pids(procs: &Path) -> Result<Vec<u32>, CgroupError> {
    let Some(text) = read_optional(procs)? else {
        return Ok(Vec::new());
    };
    text.split_whitespace()
        .map(|tok| {
            tok.parse().map_err(|_| CgroupError::Parse {
                path: procs.to_path_buf(),
                expected: "one pid per line",
                found: tok.to_owned(),
            })
        })
        .collect()
}

/// Pids in `dir` and all cgroups below it, sorted and deduplicated.
pub(crate) fn subtree_pids(dir: &Path, procs_file: &str) -> Result<Vec<u32>, CgroupError> {
    let mut pids = Vec::new();
    for d in subtree_post_order(dir)? {
        pids.extend(read_pids(&d.join(procs_file))?);
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// Value of `key` in a flat-keyed file (`key value` per line, e.g. `cpu.stat`, `memory.events`).
/// Absent keys are `None`, so kernels that lack a field (e.g. `nr_periods`) still parse.
pub(crate) fn keyed_value(path: &Path, text: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        if fields.next() == Some(key) {
            let value = fields.next().unwrap_or_default();
            return value.parse().map(Some).map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                expected: "an integer after the key",
                found: line.to_owned(),
            });
        }
    }
    Ok(None)
}

/// A single integer file such as `cpuacct.usage` or `memory.peak`.
pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        expected: "an integer",
        found: text.trim().to_owned(),
    })
}

/// Whether the effective user may write `path` (so checks honour setuid and read-only mounts).
pub(crate) fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: c_path is a valid NUL-terminated string that outlives the call.
    unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::W_OK,
            libc::AT_EACCESS,
        ) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_values_tolerate_missing_keys() {
        let p = Path::new("/fake/cpu.stat");
        let text = "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n";
        assert_eq!(keyed_value(p, text, "usage_usec").unwrap(), Some(1234));
        assert_eq!(keyed_value(p, text, "nr_periods").unwrap(), None);
        let err = keyed_value(p, "usage_usec x\n", "usage_usec").unwrap_err();
        assert!(err.to_string().contains("/fake/cpu.stat"), "{err}");
    }

    #[test]
    fn make_path_prepares_every_level_and_tolerates_existing() {
        let tmp = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        let leaf = make_path(tmp.path(), "run-1-a/0", &mut |d, leaf| {
            seen.push((d.strip_prefix(tmp.path()).unwrap().to_owned(), leaf));
            Ok(())
        })
        .unwrap();
        assert_eq!(leaf, tmp.path().join("run-1-a/0"));
        assert_eq!(
            seen,
            vec![("run-1-a".into(), false), ("run-1-a/0".into(), true)]
        );
        make_path(tmp.path(), "run-1-a/1", &mut |_, _| Ok(())).unwrap();
        assert!(tmp.path().join("run-1-a/1").is_dir());
    }

    #[test]
    fn write_optional_skips_missing_knobs_only() {
        let tmp = tempfile::tempdir().unwrap();
        let knob = tmp.path().join("memory.swap.max");
        assert!(!write_optional(&knob, "0").unwrap());
        assert!(!knob.exists(), "a missing knob must never be created");
        fs::write(&knob, "max\n").unwrap();
        assert!(write_optional(&knob, "0").unwrap());
        assert_eq!(fs::read_to_string(&knob).unwrap(), "0");
        let err = write(&tmp.path().join("nope/pids.max"), "5").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("write \"5\" to") && msg.contains("nope/pids.max"),
            "{msg}"
        );
    }

    #[test]
    fn subtree_pids_reads_nested_groups() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("child")).unwrap();
        fs::write(tmp.path().join("cgroup.procs"), "5\n3\n").unwrap();
        fs::write(tmp.path().join("child/cgroup.procs"), "7\n3\n").unwrap();
        assert_eq!(
            subtree_pids(tmp.path(), "cgroup.procs").unwrap(),
            vec![3, 5, 7]
        );
        fs::write(tmp.path().join("cgroup.procs"), "x\n").unwrap();
        assert!(subtree_pids(tmp.path(), "cgroup.procs").is_err());
    }
}
