//! Which whole block device backs a path, the device IO throttles must name.
//!
//! Throttles (`blkio.throttle.*`, `io.max`) act where bios are queued, on whole disks: a rule
//! for a partition's `MAJ:MIN` is refused or never matches. So a partition is mapped to its
//! parent disk through sysfs, while device-mapper and loop devices (their own queues) stay as is.

use std::path::{Path, PathBuf};

use super::error::{CgroupError, FsOp};
use super::files;

/// The whole-disk block device (`major`, `minor`) holding `path`, looked up in `/sys`.
pub fn block_device_of(path: &Path) -> Result<(u32, u32), CgroupError> {
    block_device_in(Path::new("/sys"), path)
}

/// [`block_device_of`] against the sysfs mounted at `sysfs` (a fake tree in tests). A path on
/// overlayfs (a container's or a Kubernetes pod's root) resolves to the disk behind the overlay's
/// upper layer, where its writes go.
pub fn block_device_in(sysfs: &Path, path: &Path) -> Result<(u32, u32), CgroupError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| CgroupError::io(FsOp::Stat, path, e))?;
    let dev = meta.dev();
    let found = whole_disk(sysfs, path, (libc::major(dev), libc::minor(dev)));
    if let Err(CgroupError::NotABlockDevice { .. }) = &found {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        if let Some(upper) = overlay_upper(&mountinfo, (libc::major(dev), libc::minor(dev))) {
            if upper != path {
                return block_device_in(sysfs, &upper).or(found);
            }
        }
    }
    found
}

/// The upper directory of the overlayfs mount with device `(major, minor)` in `mountinfo`.
fn overlay_upper(mountinfo: &str, (major, minor): (u32, u32)) -> Option<PathBuf> {
    let dev = format!("{major}:{minor}");
    mountinfo.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        if fields.get(2) != Some(&dev.as_str()) || fields.get(sep + 1) != Some(&"overlay") {
            return None;
        }
        fields
            .get(sep + 3)?
            .split(',')
            .find_map(|opt| opt.strip_prefix("upperdir="))
            .map(PathBuf::from)
    })
}

/// Maps `dev` (the `st_dev` of `path`, named for errors) to its whole disk.
pub(crate) fn whole_disk(
    sysfs: &Path,
    path: &Path,
    (major, minor): (u32, u32),
) -> Result<(u32, u32), CgroupError> {
    let link = sysfs.join(format!("dev/block/{major}:{minor}"));
    let dir = match std::fs::canonicalize(&link) {
        Ok(dir) => dir,
        // tmpfs, overlayfs, btrfs subvolumes...: anonymous devices with no block queue.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CgroupError::NotABlockDevice {
                path: path.to_path_buf(),
                major,
                minor,
                sysfs: link,
            })
        }
        Err(e) => return Err(CgroupError::io(FsOp::ResolveLink, &link, e)),
    };
    if !dir.join("partition").exists() {
        return Ok((major, minor));
    }
    // A partition's sysfs directory sits inside its disk's: `.../block/vda/vda1`.
    let parent_dev: PathBuf = dir.parent().unwrap_or(&dir).join("dev");
    parse_dev(&parent_dev, &files::read(&parent_dev)?)
}

/// A sysfs `dev` file: `MAJ:MIN`.
pub(crate) fn parse_dev(path: &Path, text: &str) -> Result<(u32, u32), CgroupError> {
    let bad = || CgroupError::Parse {
        path: path.to_path_buf(),
        expected: "MAJ:MIN",
        found: text.trim().to_owned(),
    };
    let (maj, min) = text.trim().split_once(':').ok_or_else(bad)?;
    Ok((
        maj.parse().map_err(|_| bad())?,
        min.parse().map_err(|_| bad())?,
    ))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    /// A sysfs with disk vda (254:0) holding partition vda1 (254:1), and dm-0 (253:0).
    #[test]
    fn overlay_mounts_name_their_upper_layer() {
        let info = "\
30 1 254:0 / / rw - ext4 /dev/vda rw
41 30 0:52 / /var/lib/x/merged rw,relatime - overlay overlay rw,lowerdir=/l1:/l2,upperdir=/var/lib/x/upper,workdir=/var/lib/x/work
";
        assert_eq!(
            overlay_upper(info, (0, 52)),
            Some(PathBuf::from("/var/lib/x/upper"))
        );
        assert_eq!(overlay_upper(info, (254, 0)), None);
        assert_eq!(overlay_upper(info, (0, 53)), None);
    }

    fn fake_sysfs(root: &Path) {
        let disk = root.join("devices/pci0000:00/virtio1/block/vda");
        fs::create_dir_all(disk.join("vda1")).unwrap();
        fs::write(disk.join("dev"), "254:0\n").unwrap();
        fs::write(disk.join("vda1/dev"), "254:1\n").unwrap();
        fs::write(disk.join("vda1/partition"), "1\n").unwrap();
        let dm = root.join("devices/virtual/block/dm-0");
        fs::create_dir_all(&dm).unwrap();
        fs::write(dm.join("dev"), "253:0\n").unwrap();
        let links = root.join("dev/block");
        fs::create_dir_all(&links).unwrap();
        symlink(
            "../../devices/pci0000:00/virtio1/block/vda",
            links.join("254:0"),
        )
        .unwrap();
        symlink(
            "../../devices/pci0000:00/virtio1/block/vda/vda1",
            links.join("254:1"),
        )
        .unwrap();
        symlink("../../devices/virtual/block/dm-0", links.join("253:0")).unwrap();
    }

    #[test]
    fn partitions_map_to_their_disk_and_others_to_themselves() {
        let tmp = tempfile::tempdir().unwrap();
        fake_sysfs(tmp.path());
        let p = Path::new("/data/x");
        assert_eq!(whole_disk(tmp.path(), p, (254, 1)).unwrap(), (254, 0));
        assert_eq!(whole_disk(tmp.path(), p, (254, 0)).unwrap(), (254, 0));
        assert_eq!(whole_disk(tmp.path(), p, (253, 0)).unwrap(), (253, 0));
    }

    #[test]
    fn anonymous_devices_are_named_in_the_error() {
        let tmp = tempfile::tempdir().unwrap();
        fake_sysfs(tmp.path());
        let err = whole_disk(tmp.path(), Path::new("/tmp/x"), (0, 42)).unwrap_err();
        assert!(matches!(
            err,
            CgroupError::NotABlockDevice { minor: 42, .. }
        ));
        let msg = err.to_string();
        assert!(msg.contains("/tmp/x") && msg.contains("0:42"), "{msg}");
    }

    #[test]
    fn bad_dev_files_are_parse_errors() {
        assert_eq!(parse_dev(Path::new("dev"), "8:16\n").unwrap(), (8, 16));
        for bad in ["", "8", "8:x", "a:1"] {
            assert!(parse_dev(Path::new("dev"), bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn real_paths_resolve_to_a_whole_disk() {
        // Whatever backs the temp dir: either a block device with a sysfs entry that is not a
        // partition, or (tmpfs, overlay) a NotABlockDevice error.
        let tmp = tempfile::tempdir().unwrap();
        match block_device_of(tmp.path()) {
            Ok((maj, min)) => {
                let dir = Path::new("/sys/dev/block").join(format!("{maj}:{min}"));
                assert!(dir.exists(), "{}", dir.display());
                assert!(
                    !dir.join("partition").exists(),
                    "{} is a partition",
                    dir.display()
                );
            }
            Err(e) => assert!(matches!(e, CgroupError::NotABlockDevice { .. }), "{e}"),
        }
        let err = block_device_of(Path::new("/nonexistent/psy")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/psy"), "{err}");
    }
}
