//! A size-limited scratch filesystem for one attempt: a sparse image file formatted as ext4 and
//! attached to a loop device. The container's init mounts it over the scratch directory, so
//! writing past the size fails with ENOSPC inside the test while the host's disk only ever holds
//! the (sparse) image.
//!
//! Crash safety: the loop device is attached with `LO_FLAGS_AUTOCLEAR`, so it detaches by itself
//! once the last user is gone (psy's descriptor and the container's mount, which dies with the
//! container's mount namespace); only the image file can be left behind, and it lives in the
//! run's scratch directory that gc removes.
//!
//! Hand-written ioctls: no maintained crate wraps LOOP_CTL_GET_FREE / LOOP_CONFIGURE /
//! LOOP_SET_FD / LOOP_SET_STATUS64, and `losetup` cannot set the autoclear flag on attach.

use crate::error::SandboxError;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_SET_STATUS64: libc::c_ulong = 0x4C04;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
/// `LOOP_SET_DIRECT_IO` from `<linux/loop.h>`.
const LOOP_SET_DIRECT_IO: libc::c_ulong = 0x4C08;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// `LOOP_CONFIGURE` (Linux 5.8): backing file and status in one ioctl, before the device is
/// live. The older three-step attach (`LOOP_SET_FD`, `LOOP_SET_STATUS64`, `LOOP_SET_DIRECT_IO`)
/// freezes the device's queue twice, an RCU grace period each: 32 ms per attach here against
/// 0.4 ms for `LOOP_CONFIGURE`.
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_DIRECT_IO: u32 = 16;

/// `struct loop_config` from `<linux/loop.h>`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// An attached, formatted scratch filesystem. Dropping it releases psy's hold on the loop device
/// and deletes the image.
#[derive(Debug)]
pub(crate) struct ScratchDisk {
    image: PathBuf,
    device: PathBuf,
    _loop: OwnedFd,
}

fn os(what: &'static str) -> impl FnOnce(io::Error) -> SandboxError {
    move |source| SandboxError::Os { what, source }
}

/// Creates `image` (sparse, `bytes` long) and formats it as ext4. Used for scratch disks and for
/// volumes, whose image outlives the containers that mount it.
pub fn format_image(image: &Path, bytes: u64) -> Result<(), SandboxError> {
    make_image(image, bytes, true).map(drop)
}

/// A sparse image of `bytes`, formatted ext4. A `journal` protects data across host crashes
/// (volumes); a scratch area dies with its attempt anyway, and without a journal its
/// synchronous writes (see `Sandbox::prepare`) cost no journal commits on kernel threads.
fn make_image(image: &Path, bytes: u64, journal: bool) -> Result<File, SandboxError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(image)
        .map_err(os("disk image"))?;
    file.set_len(bytes).map_err(os("disk image"))?;
    let made = Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-m",
            "0",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
        ])
        .args(if journal {
            &[][..]
        } else {
            &["-O", "^has_journal"][..]
        })
        .arg(image)
        .output()
        .map_err(os("disk filesystem (mkfs.ext4; install e2fsprogs)"))?;
    if !made.status.success() {
        let _ = std::fs::remove_file(image);
        return Err(SandboxError::Os {
            what: "disk filesystem (mkfs.ext4)",
            source: io::Error::other(String::from_utf8_lossy(&made.stderr).trim().to_string()),
        });
    }
    Ok(file)
}

/// An existing image attached to a loop device for one container (detaches by itself once the
/// container's mount and this descriptor are gone).
#[derive(Debug)]
pub(crate) struct Attached {
    pub(crate) device: PathBuf,
    _loop: OwnedFd,
}

impl Attached {
    pub(crate) fn image(image: &Path) -> Result<Self, SandboxError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(image)
            .map_err(os("volume image"))?;
        let (device, fd) = attach(&file).map_err(os("volume loop device"))?;
        Ok(Attached { device, _loop: fd })
    }
}

impl ScratchDisk {
    /// Creates `image` (sparse, `bytes` long), formats it and attaches it to a free loop device.
    pub(crate) fn create(image: &Path, bytes: u64) -> Result<Self, SandboxError> {
        let file = make_image(image, bytes, false)?;
        match attach(&file) {
            Ok((device, fd)) => Ok(ScratchDisk {
                image: image.to_path_buf(),
                device,
                _loop: fd,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(image);
                Err(os("scratch disk loop device")(e))
            }
        }
    }

    /// `/dev/loopN`, for the container's init to mount.
    pub(crate) fn device(&self) -> &Path {
        &self.device
    }

    /// `(major, minor)` of the loop device (what an IO throttle names).
    pub(crate) fn device_number(&self) -> Result<(u32, u32), SandboxError> {
        device_number(&self.device)
    }
}

/// `(major, minor)` of a device node.
pub(crate) fn device_number(device: &Path) -> Result<(u32, u32), SandboxError> {
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(device).map_err(os("loop device"))?.rdev();
    Ok((libc::major(rdev), libc::minor(rdev)))
}

impl Drop for ScratchDisk {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.image) {
            tracing::warn!("removing scratch disk image {}: {e}", self.image.display());
        }
    }
}

/// `LOOP_CONFIGURE`s `dev` onto `backing` with autoclear and, where the backing filesystem
/// takes it, direct IO (see `attach`). `Ok(false)`: the kernel has no `LOOP_CONFIGURE`.
fn configure(dev: &File, backing: &File) -> io::Result<bool> {
    for flags in [LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO, LO_FLAGS_AUTOCLEAR] {
        // SAFETY: all-zero is a valid loop_config.
        let mut config: LoopConfig = unsafe { std::mem::zeroed() };
        config.fd = backing.as_raw_fd() as u32;
        config.info.lo_flags = flags;
        // SAFETY: ioctl with a valid loop_config that outlives the call.
        if unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CONFIGURE, &config) } == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // No LOOP_CONFIGURE (before 5.8).
            Some(libc::ENOTTY) => return Ok(false),
            // Direct IO refused by the backing filesystem: try without.
            Some(libc::EINVAL) if flags & LO_FLAGS_DIRECT_IO != 0 => {
                tracing::debug!("loop device: no direct IO to the image: {err}");
            }
            _ => return Err(err),
        }
    }
    Ok(false)
}

/// Attaches `backing` to a free loop device with autoclear set; retries if another process
/// takes the free device first.
fn attach(backing: &File) -> io::Result<(PathBuf, OwnedFd)> {
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    for _ in 0..16 {
        // SAFETY: ioctl on an fd we own; returns a device number or -1.
        let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let device = PathBuf::from(format!("/dev/loop{n}"));
        let dev = OpenOptions::new().read(true).write(true).open(&device)?;
        match configure(&dev, backing) {
            Ok(true) => return Ok((device, dev.into())),
            Ok(false) => {} // an older kernel: the three-step attach below
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => continue, // taken meanwhile
            Err(e) => return Err(e),
        }
        // SAFETY: ioctl with the backing file's descriptor.
        if unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_FD, backing.as_raw_fd()) } < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EBUSY) {
                continue; // taken meanwhile
            }
            return Err(err);
        }
        // SAFETY: all-zero is a valid loop_info64.
        let mut info: LoopInfo64 = unsafe { std::mem::zeroed() };
        info.lo_flags = LO_FLAGS_AUTOCLEAR;
        // SAFETY: ioctl with a valid loop_info64.
        if unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_STATUS64, &info) } < 0 {
            let err = io::Error::last_os_error();
            // SAFETY: detach what we attached.
            unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CLR_FD, 0) };
            return Err(err);
        }
        // Direct IO to the image: the test's data does not sit a second time in the host's
        // page cache as dirty pages of the image file, whose writeback would stall everyone
        // (and escape the test's throttle). Best effort: some filesystems refuse it.
        // SAFETY: ioctl with an integer argument.
        if unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_DIRECT_IO, 1 as libc::c_ulong) } < 0 {
            tracing::debug!(
                "{}: no direct IO to the image: {}",
                device.display(),
                io::Error::last_os_error()
            );
        }
        return Ok((device, dev.into()));
    }
    Err(io::Error::other("no free loop device after 16 tries"))
}
