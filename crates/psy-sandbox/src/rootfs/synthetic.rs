//! A root of its own for a container whose volume lies where the host has no directory
//! (`path = "/data"` on a host without `/data`).
//!
//! The hardened root is the host's mounts, read-only: a missing mount point cannot be created
//! in it (and must not be: the host's files are not the test's to change). Mounting a tmpfs
//! over the nearest existing ancestor would hide the host's files there. Instead such a
//! container gets a *synthetic* directory at each existing ancestor of the missing path: an
//! empty tmpfs into which every host entry of that directory is bound again (a directory as a
//! recursive clone of its mount tree, with the read-only, `nodev` and id-mapping attributes it
//! had; a symbolic link copied; a file bound), and in which the missing directories are made.
//! The tmpfs is then made read-only and becomes the container's root, so the test sees the
//! host's tree as before, plus the mount point, and can write to none of it. The container's own
//! trees (`/tmp`, `/proc`, `/sys`, `/run`) are fresh directories there, mounted over as usual;
//! the masks of psy's state land on the clones afterwards. All of it lives in the init's mount
//! namespace, owned by the host's user namespace, so the test can undo none of it.
//!
//! The tree the init stood in (its copy of the slot's template) is put below the new root's
//! `/tmp`, covered by the container's own `/tmp`, rather than unmounted (see `build`).
//!
//! Only containers that need it pay for it (a directory listing and a clone per host entry of
//! each ancestor); every other container starts as before. Rootless and
//! privileged containers are refused such a path ([`needs`] names it).
//!
//! `plan` runs in psy (it may allocate); [`build`] runs in the init after `clone3`: raw
//! syscalls only, no allocation.

use super::build::{check_or_fail, fail, CLONE_TREE};
use crate::error::{SandboxError, SetupStep};
use crate::prepared::cstring;
use crate::sys::{self, MountAttr};
use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::path::{Component, Path, PathBuf};

/// The container's own trees at the root: made empty, never bound from the host.
const OWN_AT_ROOT: [&CStr; 4] = [c"tmp", c"proc", c"sys", c"run"];

/// What the init builds (see the module's documentation).
#[derive(Debug)]
pub(crate) struct SyntheticRoot {
    /// Options of the new root's tmpfs (owned by the slot's root).
    options: CString,
    /// The slot's root (a host uid; 0 for none): what the directories and links made in the new
    /// root belong to, so that inside they are root's, as the host's id-mapped files are.
    owner: u32,
    /// Directories rebuilt from the host's entries, parents first.
    dirs: Vec<SyntheticDir>,
    /// Directories the host lacks, relative to the root, parents first: made in the new root.
    missing: Vec<CString>,
}

/// One directory of the new root made of the host's entries.
#[derive(Debug)]
struct SyntheticDir {
    /// Relative to the root (`.` for the root itself).
    path: CString,
    /// Names made as empty directories instead of bound: synthetic directories below (rebuilt
    /// at their own turn) and, at the root, the container's own trees.
    own: Vec<CString>,
}

/// A path the host lacks, relative to `/`: its existing directories (`/` first, as the empty
/// path), then the missing ones.
type Split = (Vec<PathBuf>, Vec<PathBuf>);

/// The directories of `path` (absolute) that exist on the host, the first missing one and
/// those below it; `None` when `path` is a directory already. An error when an existing part is
/// not a directory (a file, a symbolic link: the new root would change what it means).
fn split(path: &Path) -> Result<Option<Split>, String> {
    if path.is_dir() {
        return Ok(None);
    }
    let mut existing = vec![PathBuf::new()];
    let mut missing = Vec::new();
    let mut at = PathBuf::from("/");
    for part in path.components() {
        let Component::Normal(name) = part else {
            continue;
        };
        at.push(name);
        let relative = at.strip_prefix("/").unwrap_or(&at).to_path_buf();
        if !missing.is_empty() {
            missing.push(relative);
            continue;
        }
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => existing.push(relative),
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "{} is a symbolic link on the host; name the directory it points to",
                    at.display()
                ))
            }
            Ok(_) => return Err(format!("{} is not a directory on the host", at.display())),
            Err(_) => missing.push(relative),
        }
    }
    Ok(Some((existing, missing)))
}

/// Whether a container with volumes at `paths` needs a synthetic root: the paths psy cannot
/// mount at on the host's root as it is. An error names a path no root can have.
pub(crate) fn needs<'a>(
    paths: impl IntoIterator<Item = &'a Path>,
) -> Result<Vec<&'a Path>, SandboxError> {
    let mut out = Vec::new();
    for path in paths {
        let split = split(path).map_err(|reason| SandboxError::VolumePath {
            path: path.to_path_buf(),
            reason,
        })?;
        if split.is_some() {
            out.push(path);
        }
    }
    Ok(out)
}

/// Why a container that cannot have a synthetic root (`privileged`: it sees the host's root in
/// place; else rootless: its init cannot clone the host's locked mounts one by one) refuses a
/// volume at `path`, which the host lacks.
pub(crate) fn refused(path: &Path, privileged: bool) -> SandboxError {
    let why = match privileged {
        true => {
            "a privileged test sees the host's root in place, read-only; create it or use a \
                 path under /tmp"
        }
        false => {
            "without root psy cannot make a root with it; create it, use a path under /tmp, \
                  or an image"
        }
    };
    SandboxError::VolumePath {
        path: path.to_path_buf(),
        reason: format!("the host has no such directory, and {why}"),
    }
}

/// The synthetic root that gives every one of `paths` (from [`needs`]) a mount point; its
/// tmpfs is owned by `owner` (the slot's root, a host uid; 0 for none).
pub(crate) fn plan(paths: &[&Path], owner: u32) -> Result<SyntheticRoot, SandboxError> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut missing: Vec<PathBuf> = Vec::new();
    for path in paths {
        let Some((existing, absent)) = split(path).map_err(|reason| SandboxError::VolumePath {
            path: path.to_path_buf(),
            reason,
        })?
        else {
            continue;
        };
        for (set, new) in [(&mut dirs, existing), (&mut missing, absent)] {
            for p in new {
                if !set.contains(&p) {
                    set.push(p);
                }
            }
        }
    }
    dirs.sort_by_key(|p| p.components().count());
    missing.sort_by_key(|p| p.components().count());
    let c = |p: &Path| cstring("volume path", p);
    let dirs = dirs
        .iter()
        .map(|dir| {
            // Synthetic directories right below this one, and the container's own at the root.
            let mut own: Vec<CString> = dirs
                .iter()
                .filter(|d| d.parent() == Some(dir.as_path()) && d != &dir)
                .filter_map(|d| d.file_name())
                .map(|name| cstring("volume path", name))
                .collect::<Result<_, _>>()?;
            if dir.as_os_str().is_empty() {
                own.extend(OWN_AT_ROOT.iter().map(|&n| CString::from(n)));
            }
            let path = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            Ok(SyntheticDir {
                path: c(path)?,
                own,
            })
        })
        .collect::<Result<_, SandboxError>>()?;
    Ok(SyntheticRoot {
        owner,
        options: cstring(
            "synthetic root",
            format!("size=64k,mode=755,uid={owner},gid={owner}"),
        )?,
        dirs,
        missing: missing.iter().map(|p| c(p)).collect::<Result<_, _>>()?,
    })
}

/// Builds the synthetic root from the root at `root` (the stage's, or `/` in a template copy),
/// on a tmpfs mounted at `at` (the stage's `/tmp`, a host directory nothing uses yet), then
/// puts it in place: `pivot` (the init stands in its template copy, whose whole tree is then
/// detached) or stacked over `root` (the stage, entered later by `pivot_root`).
pub(crate) unsafe fn build(s: &SyntheticRoot, root: &CStr, at: &CStr, enter: bool, status: RawFd) {
    let step = SetupStep::SyntheticRoot;
    let dir_flags = libc::O_DIRECTORY | libc::O_CLOEXEC;
    let old = check_or_fail(
        status,
        step,
        libc::open(root.as_ptr(), libc::O_PATH | dir_flags),
    );
    let flags = libc::MS_NOSUID | libc::MS_NODEV;
    check_or_fail(
        status,
        step,
        libc::mount(
            c"tmpfs".as_ptr(),
            at.as_ptr(),
            c"tmpfs".as_ptr(),
            flags,
            s.options.as_ptr().cast(),
        ),
    );
    let new = check_or_fail(
        status,
        step,
        libc::open(at.as_ptr(), libc::O_PATH | dir_flags),
    );
    for dir in &s.dirs {
        let src = check_or_fail(
            status,
            step,
            libc::openat(old, dir.path.as_ptr(), libc::O_RDONLY | dir_flags),
        );
        let dst = check_or_fail(
            status,
            step,
            libc::openat(new, dir.path.as_ptr(), libc::O_PATH | dir_flags),
        );
        copy_entries(src, dst, &dir.own, s.owner, status);
        libc::close(src);
        libc::close(dst);
    }
    for dir in &s.missing {
        make_dir(new, dir, s.owner, status);
    }
    let rdonly = MountAttr {
        attr_set: sys::MOUNT_ATTR_RDONLY,
        ..MountAttr::default()
    };
    let empty = libc::AT_EMPTY_PATH as libc::c_uint;
    check_or_fail(status, step, sys::mount_setattr(new, c"", empty, &rdonly));
    libc::close(new);
    libc::close(old);
    if enter {
        // The copied template root goes below the new root's `/tmp`, which the container's own
        // `/tmp` covers next: unmounting it here would wait for an RCU grace period (tens of
        // milliseconds on a busy host), and the namespace's end frees it anyway. The test cannot
        // unmount what covers it (the namespace belongs to the host's user namespace).
        check_or_fail(status, step, libc::chdir(at.as_ptr()));
        check_or_fail(status, step, sys::pivot_root(c".", c"tmp"));
        check_or_fail(status, step, libc::chdir(c"/".as_ptr()));
    } else {
        let tree = check_or_fail(
            status,
            step,
            sys::open_tree(at, CLONE_TREE | sys::AT_RECURSIVE),
        );
        check_or_fail(status, step, sys::move_mount_to(tree, root));
        libc::close(tree);
    }
}

/// `mkdirat(dir, name)`, given to `owner`; an existing directory is fine (asked with
/// `fstatat`: errno is not ours to read, see `child::make_mountpoint`).
unsafe fn make_dir(dir: RawFd, name: &CStr, owner: u32, status: RawFd) {
    if libc::mkdirat(dir, name.as_ptr(), 0o755) < 0 {
        if file_type(dir, name) != libc::S_IFDIR {
            fail(status, SetupStep::SyntheticRoot);
        }
        return;
    }
    give(dir, name, owner, status);
}

/// `name` in `dir` (not followed if a link) to `owner` and its group alike.
unsafe fn give(dir: RawFd, name: &CStr, owner: u32, status: RawFd) {
    let flags = libc::AT_SYMLINK_NOFOLLOW;
    if owner != 0 && libc::fchownat(dir, name.as_ptr(), owner, owner, flags) < 0 {
        fail(status, SetupStep::SyntheticRoot);
    }
}

/// The `S_IFMT` bits of `name` in `dir` (not following a link); 0 when it cannot be read.
unsafe fn file_type(dir: RawFd, name: &CStr) -> libc::mode_t {
    let mut st: libc::stat = std::mem::zeroed();
    match libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) {
        0 => st.st_mode & libc::S_IFMT,
        _ => 0,
    }
}

/// Recreates every entry of `src` (a host directory) in `dst` (the new root's): directories
/// and files bound (a recursive clone of their mounts), links copied, names in `own` made
/// empty directories. Sockets, pipes and devices are left out.
unsafe fn copy_entries(src: RawFd, dst: RawFd, own: &[CString], owner: u32, status: RawFd) {
    let step = SetupStep::SyntheticRoot;
    // 8-aligned: the kernel writes `linux_dirent64` records here.
    let mut buf = [0u64; 1024];
    loop {
        let n = libc::syscall(
            libc::SYS_getdents64,
            src,
            buf.as_mut_ptr(),
            std::mem::size_of_val(&buf),
        );
        if n < 0 {
            fail(status, step);
        }
        if n == 0 {
            return;
        }
        let bytes = std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize);
        let mut off = 0usize;
        while let Some(record) = bytes.get(off..) {
            // d_ino (8), d_off (8), d_reclen (2), d_type (1), then the NUL-terminated name.
            let (Some(&lo), Some(&hi)) = (record.get(16), record.get(17)) else {
                break;
            };
            let reclen = usize::from(u16::from_ne_bytes([lo, hi]));
            let Some(name) = record
                .get(19..reclen)
                .and_then(|r| CStr::from_bytes_until_nul(r).ok())
            else {
                break;
            };
            off += reclen.max(1);
            copy_entry(src, dst, name, own, owner, status);
        }
    }
}

unsafe fn copy_entry(
    src: RawFd,
    dst: RawFd,
    name: &CStr,
    own: &[CString],
    owner: u32,
    status: RawFd,
) {
    let step = SetupStep::SyntheticRoot;
    if name == c"." || name == c".." {
        return;
    }
    let kind = file_type(src, name);
    if own.iter().any(|o| o.as_c_str() == name) {
        if kind == libc::S_IFDIR {
            make_dir(dst, name, owner, status);
        }
        return;
    }
    match kind {
        libc::S_IFDIR => make_dir(dst, name, owner, status),
        libc::S_IFREG => {
            let fd = check_or_fail(
                status,
                step,
                libc::openat(
                    dst,
                    name.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                ),
            );
            libc::close(fd);
        }
        libc::S_IFLNK => {
            let mut target = [0u8; libc::PATH_MAX as usize];
            let len = libc::readlinkat(
                src,
                name.as_ptr(),
                target.as_mut_ptr().cast(),
                target.len() - 1,
            );
            // A link this long or gone meanwhile is left out.
            if len >= 0 {
                check_or_fail(
                    status,
                    step,
                    libc::symlinkat(target.as_ptr().cast(), dst, name.as_ptr()),
                );
                give(dst, name, owner, status);
            }
            return;
        }
        _ => return,
    }
    let tree = libc::syscall(
        libc::SYS_open_tree,
        src,
        name.as_ptr(),
        CLONE_TREE | sys::AT_RECURSIVE,
    ) as RawFd;
    check_or_fail(status, step, tree);
    check_or_fail(
        status,
        step,
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            dst,
            name.as_ptr(),
            sys::MOVE_MOUNT_F_EMPTY_PATH,
        ) as libc::c_int,
    );
    libc::close(tree);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[CString]) -> Vec<&str> {
        v.iter().map(|c| c.to_str().unwrap()).collect()
    }

    #[test]
    fn existing_directories_need_nothing() {
        assert!(needs([Path::new("/tmp"), Path::new("/")])
            .unwrap()
            .is_empty());
        let missing = Path::new("/psy-synthetic-unit-test/data");
        assert_eq!(needs([missing]).unwrap(), [missing]);
    }

    #[test]
    fn each_existing_ancestor_is_rebuilt_and_the_rest_made() {
        // Not under /tmp, which is the container's own at the root.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let deep = dir.path().join("a/b");
        let s = plan(&[&deep, Path::new("/psy-synthetic-unit-test/x")], 7).unwrap();
        let rel = dir.path().strip_prefix("/").unwrap();
        let dirs: Vec<&str> = s.dirs.iter().map(|d| d.path.to_str().unwrap()).collect();
        let mut want = vec![".".to_owned()];
        let mut at = PathBuf::new();
        for part in rel.components() {
            at.push(part);
            want.push(at.display().to_string());
        }
        assert_eq!(dirs, want);
        // The root keeps the container's own trees and the first synthetic child empty.
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let root_own = strs(&s.dirs[0].own);
        assert!(root_own.contains(&top), "{root_own:?}");
        assert!(root_own.contains(&"proc") && root_own.contains(&"tmp"));
        assert!(s.dirs.last().unwrap().own.is_empty());
        assert_eq!(
            strs(&s.missing),
            [
                "psy-synthetic-unit-test".to_owned(),
                "psy-synthetic-unit-test/x".to_owned(),
                rel.join("a").display().to_string(),
                rel.join("a/b").display().to_string(),
            ]
        );
        assert_eq!(s.options.to_str().unwrap(), "size=64k,mode=755,uid=7,gid=7");
    }

    #[test]
    fn a_file_or_link_on_the_way_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("link")).unwrap();
        let err = needs([dir.path().join("file/data").as_path()]).unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
        let err = needs([dir.path().join("link/missing").as_path()]).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
}
