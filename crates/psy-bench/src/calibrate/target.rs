//! What is measured: the disk behind a directory (the one `psy run` throttles for scratch areas
//! there) and a scratch file on it that cannot outlive `psy calibrate`.

use crate::error::usage;
use anyhow::Context;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The most the scratch file takes: enough that sequential phases are not one cached region.
const MAX_FILE: u64 = 1 << 30;
/// Below this a measurement says more about caches than about the disk.
const MIN_FILE: u64 = 64 << 20;

/// A whole disk, as the IO controller of cgroups names it.
#[derive(Debug)]
pub(crate) struct Disk {
    pub(crate) major: u32,
    pub(crate) minor: u32,
    /// `/dev/vda`, or `MAJ:MIN` when sysfs does not say.
    pub(crate) name: String,
}

/// The whole disk under `dir`. A directory on tmpfs or overlayfs has none, and neither do IO
/// throttles of tests there: nothing to calibrate.
pub(crate) fn disk_behind(dir: &Path) -> anyhow::Result<Disk> {
    let (major, minor) = psy_sandbox::cgroup::block_device_of(dir).map_err(|e| {
        usage(format!(
            "{e}: psy calibrate measures a disk; pass --dir on the filesystem the tests write to"
        ))
    })?;
    let uevent = format!("/sys/dev/block/{major}:{minor}/uevent");
    let name = std::fs::read_to_string(uevent)
        .ok()
        .and_then(|text| {
            let line = text.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
            Some(format!("/dev/{line}"))
        })
        .unwrap_or_else(|| format!("{major}:{minor}"));
    Ok(Disk { major, minor, name })
}

/// The scratch file's size for the space free under `dir`: a quarter of it, at most 1 GiB,
/// in whole MiB (a multiple of every block size used).
pub(crate) fn file_size(dir: &Path) -> anyhow::Result<u64> {
    let free = free_bytes(dir).with_context(|| format!("statvfs {}", dir.display()))?;
    let size = (free / 4).min(MAX_FILE) & !((1 << 20) - 1);
    if size < MIN_FILE {
        return Err(usage(format!(
            "{}: only {} free; psy calibrate needs {} for its scratch file",
            dir.display(),
            psy_config::format_size(free),
            psy_config::format_size(MIN_FILE * 4)
        )));
    }
    Ok(size)
}

fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: statvfs fills the struct we pass; the path is NUL-terminated.
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c_path.as_ptr(), &mut st) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        st
    };
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Creates the scratch file in `dir`, opened for O_DIRECT, and unlinks it at once: its blocks
/// are freed when psy exits, whether it finishes, fails, or is killed by Ctrl-C.
pub(crate) fn scratch_file(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join(format!(".psy-calibrate-{}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_DIRECT)
        .open(&path);
    let file = match file {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            return Err(usage(format!(
                "{}: the filesystem refuses direct IO (O_DIRECT), so its disk cannot be \
                 measured without the page cache; pass --dir on a disk filesystem (ext4, xfs, btrfs)",
                dir.display()
            )))
        }
        Err(e) => {
            return Err(usage(format!(
                "{}: cannot create a scratch file: {e}",
                path.display()
            )))
        }
    };
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    Ok(file)
}
