//! Image roots: a container whose root filesystem is an image's layers instead of the host's.
//!
//! The init mounts a small tmpfs over its own view of `/tmp` (or another directory, see
//! [`layers_at`]), attaches a clone of each layer
//! directory there (read-only, `nodev`, id-mapped over the slot's user namespace where the
//! filesystem allows, so that files the image gives to root belong to container root), and
//! mounts overlayfs on top with this attempt's writable layer: that is the stage, which the
//! rest of the root (`/tmp`, `/dev`, `/proc`, the project, scratch, volumes) is built in,
//! entered with `pivot_root` as the host view is. The layers' short mount points keep the
//! overlay's options within a page, whatever the store's paths. Before the clone the launcher
//! writes the attempt's `etc/hostname`, `etc/hosts` and `etc/resolv.conf` into the writable
//! layer, owned by the slot's root ([`write_etc`]).
//!
//! As root with a user namespace, the init does not build in its copy of the launcher's mount
//! namespace (tearing down that copy of every host mount took most of an image container's
//! start): it clones the layers and the attempt's writable directory while the host is in sight,
//! then joins the image template (`template.rs`: an empty, read-only tmpfs as root), copies it,
//! and builds the same stage there, at [`IN_TEMPLATE`]. It enters the stage by moving it over `/`
//! and `chroot`, as runc does without `pivot_root`: nothing is left to unmount, and what lies
//! below (the template's empty tmpfs) is out of reach: path walks follow mounts down, the
//! namespace belongs to host root, and a test's own mount namespace gets every mount locked.

use crate::error::SandboxError;
use crate::prepared::cstring;
use crate::spec::{ImageRoot, MAX_LAYERS};
use crate::sys;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Where the init may mount the tmpfs holding the layers' mount points (and the merged root,
/// the stage, at `root` in it): the first of these host directories below which lies none of
/// the paths the init still opens after mounting it (the layers, the writable layer). Not
/// `/dev`: a rootless init binds the host's device nodes from there.
const LAYERS_AT: [&str; 7] = ["/tmp", "/mnt", "/media", "/srv", "/opt", "/boot", "/run"];

/// The directory the layers' tmpfs covers for `image` (see [`LAYERS_AT`]).
pub(crate) fn layers_at(image: &ImageRoot) -> Result<&'static str, SandboxError> {
    let needed = || {
        image
            .layers
            .iter()
            .chain([&image.upper_dir, &image.work_dir])
    };
    LAYERS_AT
        .into_iter()
        .find(|dir| Path::new(dir).is_dir() && !needed().any(|p| p.starts_with(dir)))
        .ok_or_else(|| SandboxError::Image {
            reason: format!(
                "the layers and writable layer lie below every directory the init may cover \
                 ({})",
                LAYERS_AT.join(", ")
            ),
        })
}

/// Where the layers' tmpfs is mounted in a copy of the image template.
pub(crate) const IN_TEMPLATE: &str = "/w";

/// The image's merged root (the stage) when the layers' tmpfs covers `layers_at`.
pub(crate) fn stage(layers_at: &str) -> String {
    format!("{layers_at}/root")
}

/// Trees every container mounts its own of; an image need not have their directories.
const OWN_MOUNTPOINTS: [&str; 5] = ["/tmp", "/dev", "/proc", "/sys", "/run"];

/// What the init needs to mount an image's root, as C strings.
#[derive(Debug)]
pub(crate) struct ImagePlan {
    /// `(layer directory, its mount point under the layers' tmpfs)`, bottom first.
    pub(crate) layers: Vec<(CString, CString)>,
    pub(crate) layers_at: CString,
    /// In the image template: the attempt's writable directory (parent of the writable layer
    /// and overlayfs' work directory), cloned before joining it, and its mount point.
    pub(crate) writable: Option<(CString, CString)>,
    pub(crate) root: CString,
    /// overlayfs' options: `lowerdir` (top first), `upperdir`, `workdir`, maybe `userxattr`.
    pub(crate) overlay_options: CString,
    /// Mount points of the container's own trees inside the stage, made where the image has none.
    pub(crate) mountpoints: Vec<CString>,
    /// A ready overlay from the pool (`overlay_pool.rs`), a detached mount the init attaches
    /// at `root` instead of making one (then it clones no layer); -1 for none.
    pub(crate) overlay: RawFd,
}

impl ImagePlan {
    /// The plan to build in the init's own mount namespace, or (`in_template`) in a copy of
    /// the image template.
    pub(crate) fn new(image: &ImageRoot, in_template: bool) -> Result<Self, SandboxError> {
        let at = match in_template {
            true => IN_TEMPLATE,
            false => layers_at(image)?,
        };
        let root = stage(at);
        if image.layers.is_empty() || image.layers.len() > MAX_LAYERS {
            return Err(SandboxError::Image {
                reason: format!(
                    "{} layers: an image root takes 1 to {MAX_LAYERS}",
                    image.layers.len()
                ),
            });
        }
        let layers = layer_mounts(&image.layers, at)?;
        let lower: Vec<String> = (0..image.layers.len())
            .rev()
            .map(|i| format!("{at}/{i}"))
            .collect();
        let (upper, work) = (
            overlay_path(&image.upper_dir)?,
            overlay_path(&image.work_dir)?,
        );
        let (writable, upper, work) = match in_template {
            false => (None, upper, work),
            true => {
                let parent = image
                    .upper_dir
                    .parent()
                    .filter(|p| Some(*p) == image.work_dir.parent() && *p != Path::new("/"));
                let (Some(parent), Some(u), Some(w)) = (
                    parent,
                    image.upper_dir.file_name().and_then(|n| n.to_str()),
                    image.work_dir.file_name().and_then(|n| n.to_str()),
                ) else {
                    return Err(SandboxError::Image {
                        reason: format!(
                            "{} and {}: the writable layer and overlayfs' work directory must \
                             share a parent directory",
                            image.upper_dir.display(),
                            image.work_dir.display()
                        ),
                    });
                };
                let mount_point = format!("{at}/rw");
                let source = cstring("image writable directory", parent)?;
                let target = cstring("image writable directory", &mount_point)?;
                let (u, w) = (format!("{mount_point}/{u}"), format!("{mount_point}/{w}"));
                (Some((source, target)), u, w)
            }
        };
        // `volatile`: the writable layer is thrown away after the attempt, so nothing need
        // reach the disk; without it, unmounting the overlay when the init exits syncs the
        // writable layer's whole filesystem (about 5 ms per container on the host's root).
        let mut options = format!(
            "lowerdir={},upperdir={upper},workdir={work},volatile",
            lower.join(":")
        );
        if image.user_xattrs {
            options.push_str(",userxattr");
        }
        Ok(ImagePlan {
            layers,
            layers_at: cstring("image layers", at)?,
            writable,
            root: cstring("image root", &root)?,
            overlay_options: cstring("overlay options", options)?,
            mountpoints: OWN_MOUNTPOINTS
                .iter()
                .map(|p| cstring("mount point", format!("{root}{p}")))
                .collect::<Result<_, _>>()?,
            overlay: -1,
        })
    }
}

/// `(layer directory, its mount point)` of each of `layers`, bottom first: `<at>/<index>`.
pub(crate) fn layer_mounts(
    layers: &[std::path::PathBuf],
    at: &str,
) -> Result<Vec<(CString, CString)>, SandboxError> {
    layers
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            Ok((
                cstring("image layer", dir)?,
                cstring("image layer", format!("{at}/{i}"))?,
            ))
        })
        .collect()
}

/// A path as overlayfs' options take it: absolute, without the separators `,` and `:`.
fn overlay_path(path: &Path) -> Result<String, SandboxError> {
    let s = path.to_str().unwrap_or_default();
    if !path.is_absolute() || s.is_empty() || s.contains([',', ':', '\\']) {
        return Err(SandboxError::Image {
            reason: format!(
                "{}: the writable layer's directories need an absolute path without ',' or ':'",
                path.display()
            ),
        });
    }
    Ok(s.to_owned())
}

/// The attempt's `etc/hostname`, `etc/hosts` and `etc/resolv.conf`, by name. `hosts`: a
/// complete hosts file to use (a scenario's node names).
fn etc_files(hostname: &str, hosts: Option<&Path>) -> io::Result<[(&'static str, Vec<u8>); 3]> {
    let resolv = std::fs::read("/etc/resolv.conf").unwrap_or_default();
    let hosts = match hosts {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
        None => format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
        ),
    };
    Ok([
        ("hostname", format!("{hostname}\n").into_bytes()),
        ("hosts", hosts.into_bytes()),
        ("resolv.conf", resolv),
    ])
}

/// Writes the attempt's `etc/hostname`, `etc/hosts` and `etc/resolv.conf` into its writable
/// layer (they hide the image's own), owned by `owner` (the slot root's host id) when given,
/// as `etc/` itself and the layer's top directory, so that container root owns what it wrote
/// and may change them. `hosts`: a complete hosts file to use (a scenario's node names).
pub(crate) fn write_etc(
    image: &ImageRoot,
    hostname: &str,
    hosts: Option<&Path>,
    owner: Option<u32>,
) -> io::Result<()> {
    let etc = image.upper_dir.join("etc");
    std::fs::create_dir_all(&etc)?;
    let files = etc_files(hostname, hosts)?;
    for (name, content) in &files {
        std::fs::write(etc.join(name), content)?;
    }
    if let Some(id) = owner {
        let chown = |p: &Path| std::os::unix::fs::lchown(p, Some(id), Some(id));
        chown(&image.upper_dir)?;
        chown(&etc)?;
        for (name, _) in &files {
            chown(&etc.join(name))?;
        }
    }
    Ok(())
}

/// Like [`write_etc`], through a ready overlay (`root`: its detached mount, whose writable
/// layer is not at the attempt's `upper_dir` but on the pool's tmpfs, and whose top directory
/// the pool gave to `owner` already). A file the image has as a symlink is replaced.
pub(crate) fn write_etc_in(
    root: RawFd,
    hostname: &str,
    hosts: Option<&Path>,
    owner: Option<u32>,
) -> io::Result<()> {
    let files = etc_files(hostname, hosts)?;
    let last = |r: libc::c_int| match r {
        r if r < 0 => Err(io::Error::last_os_error()),
        r => Ok(r),
    };
    let (uid, gid) = owner.map_or((u32::MAX, u32::MAX), |id| (id, id));
    // SAFETY: plain *at syscalls on descriptors we own, with C string literals; every
    // descriptor opened here is closed by its OwnedFd.
    unsafe {
        if libc::mkdirat(root, c"etc".as_ptr(), 0o755) < 0 && sys::errno() != libc::EEXIST {
            return Err(io::Error::last_os_error());
        }
        let etc = OwnedFd::from_raw_fd(last(libc::openat(
            root,
            c"etc".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        ))?);
        last(libc::fchown(etc.as_raw_fd(), uid, gid))?;
        for (name, content) in &files {
            let name = CString::new(*name).expect("no NUL in a file name");
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW;
            let open = || {
                libc::openat(
                    etc.as_raw_fd(),
                    name.as_ptr(),
                    flags | libc::O_CLOEXEC,
                    0o644,
                )
            };
            let mut fd = open();
            if fd < 0 && sys::errno() == libc::ELOOP {
                // The image's is a symlink: ours hides it.
                last(libc::unlinkat(etc.as_raw_fd(), name.as_ptr(), 0))?;
                fd = open();
            }
            let file = std::fs::File::from(OwnedFd::from_raw_fd(last(fd)?));
            io::Write::write_all(&mut &file, content)?;
            last(libc::fchown(file.as_raw_fd(), uid, gid))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn image(layers: usize) -> ImageRoot {
        ImageRoot {
            layers: (0..layers)
                .map(|i| PathBuf::from(format!("/store/layers/{i}")))
                .collect(),
            upper_dir: PathBuf::from("/state/upper"),
            work_dir: PathBuf::from("/state/work"),
            user_xattrs: false,
            user: None,
            project_path: None,
        }
    }

    #[test]
    fn lower_directories_are_listed_top_first_at_short_mount_points() {
        let plan = ImagePlan::new(&image(3), false).unwrap();
        assert_eq!(
            plan.overlay_options.to_str().unwrap(),
            "lowerdir=/tmp/2:/tmp/1:/tmp/0,upperdir=/state/upper,workdir=/state/work,volatile"
        );
        assert_eq!(plan.layers[0].0.to_str().unwrap(), "/store/layers/0");
        assert_eq!(plan.layers[2].1.to_str().unwrap(), "/tmp/2");
        // The longest options still fit in a page.
        let plan = ImagePlan::new(&image(MAX_LAYERS), false).unwrap();
        assert!(plan.overlay_options.as_bytes().len() < 4096);
    }

    #[test]
    fn the_layers_tmpfs_never_covers_what_the_init_still_opens() {
        let mut under_tmp = image(1);
        under_tmp.layers = vec![PathBuf::from("/tmp/project/rootfs")];
        let plan = ImagePlan::new(&under_tmp, false).unwrap();
        assert_eq!(plan.layers_at.to_str().unwrap(), "/mnt");
        assert_eq!(plan.root.to_str().unwrap(), "/mnt/root");
        assert_eq!(plan.layers[0].1.to_str().unwrap(), "/mnt/0");
    }

    #[test]
    fn in_the_template_the_writable_directory_is_cloned_to_a_fixed_place() {
        let plan = ImagePlan::new(&image(2), true).unwrap();
        assert_eq!(
            plan.overlay_options.to_str().unwrap(),
            "lowerdir=/w/1:/w/0,upperdir=/w/rw/upper,workdir=/w/rw/work,volatile"
        );
        let (source, target) = plan.writable.unwrap();
        assert_eq!(source.to_str().unwrap(), "/state");
        assert_eq!(target.to_str().unwrap(), "/w/rw");
        assert_eq!(plan.root.to_str().unwrap(), "/w/root");
        let mut apart = image(1);
        apart.work_dir = PathBuf::from("/elsewhere/work");
        let err = ImagePlan::new(&apart, true).unwrap_err().to_string();
        assert!(err.contains("share a parent"), "{err}");
        assert!(ImagePlan::new(&apart, false).is_ok());
    }

    #[test]
    fn bad_layer_counts_and_paths_are_refused() {
        assert!(ImagePlan::new(&image(0), false).is_err());
        assert!(ImagePlan::new(&image(MAX_LAYERS + 1), true).is_err());
        let mut bad = image(1);
        bad.upper_dir = PathBuf::from("/state/a,b");
        assert!(ImagePlan::new(&bad, false).is_err());
        bad.upper_dir = PathBuf::from("relative");
        assert!(ImagePlan::new(&bad, false).is_err());
    }
}
