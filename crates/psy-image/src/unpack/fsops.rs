//! The file system calls of unpacking that std lacks: owners and times without following
//! symlinks, device nodes, whiteouts and xattrs.

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, Timespec, Timestamps, XattrFlags, CWD};
use std::io;
use std::path::Path;

/// Sets owner and group of `path` itself (never a symlink's target).
pub(crate) fn lchown(path: &Path, uid: u64, gid: u64) -> io::Result<()> {
    let (uid, gid) = (id(uid)?, id(gid)?);
    rfs::chownat(
        CWD,
        path,
        Some(rfs::Uid::from_raw(uid)),
        Some(rfs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )?;
    Ok(())
}

fn id(value: u64) -> io::Result<u32> {
    u32::try_from(value)
        .ok()
        .filter(|v| *v != u32::MAX)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("user or group id {value} out of range"),
            )
        })
}

/// Sets the access and modification times of `path` itself to `mtime` (seconds).
pub(crate) fn set_mtime(path: &Path, mtime: u64) -> io::Result<()> {
    let time = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: time,
        last_modification: time,
    };
    rfs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// The kind of special file a tar entry asks for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Node {
    Char,
    Block,
    Fifo,
}

/// Creates a device node or fifo at `path`.
pub(crate) fn mknod(path: &Path, node: Node, mode: u32, major: u32, minor: u32) -> io::Result<()> {
    let kind = match node {
        Node::Char => FileType::CharacterDevice,
        Node::Block => FileType::BlockDevice,
        Node::Fifo => FileType::Fifo,
    };
    rfs::mknodat(
        CWD,
        path,
        kind,
        Mode::from_raw_mode(mode & 0o7777),
        rfs::makedev(major, minor),
    )?;
    Ok(())
}

/// Creates an overlayfs whiteout at `path`: a character device 0:0 (which Linux >= 5.8 lets
/// an unprivileged user create too).
pub(crate) fn whiteout(path: &Path) -> io::Result<()> {
    mknod(path, Node::Char, 0, 0, 0)
}

/// Sets the xattr `name` of `path` itself.
pub(crate) fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    rfs::lsetxattr(path, name, value, XattrFlags::empty())?;
    Ok(())
}
