//! Planning the hardened root in psy: which host mounts make the host view, which paths are
//! masked, and every path the init mounts at, already prefixed with the stage and as C strings.

use super::image::ImagePlan;
use crate::error::SandboxError;
use crate::prepared::{cstring, BindTarget};
use crate::spec::ImageRoot;
use serde::{Deserialize, Serialize};
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

/// Host trees every container gets its own of: their mounts are not part of the host view.
const PRIVATE_TREES: [&str; 5] = ["/proc", "/sys", "/dev", "/run", "/tmp"];

/// runc's masked paths: files hidden behind `/dev/null`...
const MASKED_FILES: [&str; 6] = [
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
];
/// ... directories behind an empty read-only tmpfs ...
const MASKED_DIRS: [&str; 5] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// ... and trees of `/proc` made read-only.
const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What this host's view looks like; found once per run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct HostView {
    /// Host mount points cloned into the view, parents first.
    pub(crate) mounts: Vec<PathBuf>,
    /// The masked and read-only paths that exist on this kernel.
    pub(crate) masked_files: Vec<PathBuf>,
    pub(crate) masked_dirs: Vec<PathBuf>,
    pub(crate) read_only: Vec<PathBuf>,
    /// The host has `/run` (it is replaced by an empty tmpfs).
    pub(crate) has_run: bool,
    /// Mount the container's own cgroup (v2, through its cgroup namespace) at `/sys/fs/cgroup`.
    pub(crate) cgroup2: bool,
}

impl HostView {
    /// Reads `/proc/self/mountinfo` and checks which masked paths exist.
    pub(crate) fn detect(cgroup2: bool) -> Result<Self, SandboxError> {
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").map_err(|source| SandboxError::Os {
                what: "host view (/proc/self/mountinfo)",
                source,
            })?;
        let exists = |list: &[&str]| -> Vec<PathBuf> {
            list.iter()
                .map(PathBuf::from)
                .filter(|p| p.exists())
                .collect()
        };
        Ok(HostView {
            mounts: host_view_mounts(&mountinfo),
            masked_files: exists(&MASKED_FILES),
            masked_dirs: exists(&MASKED_DIRS),
            read_only: exists(&READ_ONLY),
            has_run: Path::new("/run").is_dir(),
            cgroup2,
        })
    }
}

/// Mount points of `mountinfo` that make the host view: each once, a parent before what is
/// mounted below it, none at or below a private tree.
pub(crate) fn host_view_mounts(mountinfo: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for line in mountinfo.lines() {
        let Some(field) = line.split(' ').nth(4) else {
            continue;
        };
        let path = PathBuf::from(unescape(field));
        let private = PRIVATE_TREES.iter().any(|t| path.starts_with(t));
        if !private && path.is_absolute() && !out.contains(&path) {
            out.push(path);
        }
    }
    if !out.iter().any(|p| p == Path::new("/")) {
        out.push(PathBuf::from("/"));
    }
    // mountinfo is not always in mount order (after `switch_root`, mounts moved from the
    // initramfs come before the new root): parents first, so each finds its mount point.
    out.sort_by_key(|p| p.components().count());
    out
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            d.iter()
                .all(|b| (b'0'..=b'7').contains(b))
                .then(|| d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0')))
        });
        match (bytes[i], octal) {
            (b'\\', Some(value)) if value <= 0xff => {
                out.push(value as u8);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `path` inside `stage` (`/` for the root the init already stands in).
pub(crate) fn staged(stage: &str, path: &Path) -> PathBuf {
    let relative = path.strip_prefix("/").unwrap_or(path);
    if relative.as_os_str().is_empty() {
        PathBuf::from(stage)
    } else {
        Path::new(stage).join(relative)
    }
}

/// A mount target inside `stage`, with the directories to create first when it lies below
/// a tree the container mounts fresh (`/tmp`, a mask).
pub(crate) fn staged_target(
    stage: &str,
    what: &'static str,
    path: &Path,
    fresh_trees: &[PathBuf],
) -> Result<BindTarget, SandboxError> {
    let mut mkdirs = Vec::new();
    if let Some(tree) = fresh_trees.iter().find(|t| path.starts_with(t)) {
        let mut acc = PathBuf::new();
        for comp in path.components() {
            acc.push(comp);
            if acc.starts_with(tree) && acc != *tree {
                mkdirs.push(cstring(what, staged(stage, &acc))?);
            }
        }
    }
    Ok(BindTarget {
        path: cstring(what, staged(stage, path))?,
        mkdirs,
    })
}

/// The container's own trees, as the init names them (inside the stage, or in place when the
/// init stands in its slot's template root).
#[derive(Debug)]
pub(crate) struct OwnTrees {
    /// The stage itself (what `pivot_root` enters).
    pub(crate) root: CString,
    pub(crate) tmp: CString,
    pub(crate) dev: CString,
    /// `/dev`'s device nodes: `(node, the host's, major, minor)`.
    pub(crate) dev_nodes: Vec<(CString, &'static CStr, u32, u32)>,
    /// `/dev`'s symbolic links: `(link, target)`.
    pub(crate) dev_links: Vec<(CString, &'static CStr)>,
    pub(crate) dev_null: CString,
    pub(crate) dev_pts: CString,
    pub(crate) dev_shm: CString,
    pub(crate) run: CString,
    pub(crate) proc: CString,
    pub(crate) sys: CString,
}

impl OwnTrees {
    pub(crate) fn new(stage: &str) -> Result<Self, SandboxError> {
        let at = |path: &str| cstring("container tree", staged(stage, Path::new(path)));
        let nodes: [(&str, &'static CStr, u32, u32); 6] = [
            ("/dev/null", c"/dev/null", 1, 3),
            ("/dev/zero", c"/dev/zero", 1, 5),
            ("/dev/full", c"/dev/full", 1, 7),
            ("/dev/random", c"/dev/random", 1, 8),
            ("/dev/urandom", c"/dev/urandom", 1, 9),
            ("/dev/tty", c"/dev/tty", 5, 0),
        ];
        let links: [(&str, &'static CStr); 5] = [
            ("/dev/fd", c"/proc/self/fd"),
            ("/dev/stdin", c"/proc/self/fd/0"),
            ("/dev/stdout", c"/proc/self/fd/1"),
            ("/dev/stderr", c"/proc/self/fd/2"),
            ("/dev/ptmx", c"pts/ptmx"),
        ];
        Ok(OwnTrees {
            root: at("/")?,
            tmp: at("/tmp")?,
            dev: at("/dev")?,
            dev_nodes: nodes
                .iter()
                .map(|&(node, host, major, minor)| Ok((at(node)?, host, major, minor)))
                .collect::<Result<_, SandboxError>>()?,
            dev_links: links
                .iter()
                .map(|&(link, to)| Ok((at(link)?, to)))
                .collect::<Result<_, SandboxError>>()?,
            dev_null: at("/dev/null")?,
            dev_pts: at("/dev/pts")?,
            dev_shm: at("/dev/shm")?,
            run: at("/run")?,
            proc: at("/proc")?,
            sys: at("/sys")?,
        })
    }
}

/// Everything the init needs to build the root, as C strings inside the stage.
#[derive(Debug)]
pub(crate) struct RootPlan {
    /// Paths are inside the stage: [`STAGE`](super::STAGE) when the init builds the whole root,
    /// `/` when it stands in its slot's template (`template.rs`) and adds only its own trees.
    pub(crate) own: OwnTrees,
    /// `(host mount point, where it goes in the stage)`, parents first.
    pub(crate) host_mounts: Vec<(CString, CString)>,
    pub(crate) masked_files: Vec<CString>,
    pub(crate) masked_dirs: Vec<CString>,
    pub(crate) read_only: Vec<CString>,
    pub(crate) has_run: bool,
    pub(crate) cgroup2: bool,
    /// Directories hidden behind an empty read-only tmpfs (psy's state directory).
    pub(crate) masks: Vec<CString>,
    /// `Some`: the root is this image's, not the host view (`host_mounts` unused).
    pub(crate) image: Option<ImagePlan>,
    /// Rootless: device nodes are bound from the host (no `mknod`), and the host view is the
    /// host's whole tree cloned at once. The kernel refuses to clone one mount of a user
    /// namespace's locked tree alone (it would uncover what the tree's mounts hide), so the
    /// host's `/proc`, `/sys`, `/dev` come along under the container's own; they stay locked
    /// beneath them, since the test runs in a nested user namespace.
    pub(crate) rootless: bool,
    /// `Some`: a volume's mount point is missing on the host: the root is rebuilt on a tmpfs
    /// of the container's own (`synthetic.rs`). Set by `Prepared`, which knows the volumes.
    pub(crate) synthetic: Option<super::synthetic::SyntheticRoot>,
}

impl RootPlan {
    pub(crate) fn new(
        view: &HostView,
        masks: &[PathBuf],
        rootless: bool,
        in_userns: bool,
        stage: &str,
        image: Option<&ImageRoot>,
        in_template: bool,
    ) -> Result<Self, SandboxError> {
        let staged_all = |what, paths: &[PathBuf]| -> Result<Vec<CString>, SandboxError> {
            paths
                .iter()
                .map(|p| cstring(what, staged(stage, p)))
                .collect()
        };
        Ok(RootPlan {
            own: OwnTrees::new(stage)?,
            host_mounts: view
                .mounts
                .iter()
                .take(if rootless { 1 } else { usize::MAX })
                .map(|m| {
                    let target = cstring("host mount", staged(stage, m))?;
                    Ok((cstring("host mount", m)?, target))
                })
                .collect::<Result<_, SandboxError>>()?,
            masked_files: staged_all("masked path", &view.masked_files)?,
            masked_dirs: staged_all("masked path", &view.masked_dirs)?,
            // In a user namespace the kernel already refuses these writes (every file there
            // belongs to host root, which container root is not): 10 mounts saved per start.
            read_only: match in_userns {
                true => Vec::new(),
                false => staged_all("read-only path", &view.read_only)?,
            },
            has_run: view.has_run,
            cgroup2: view.cgroup2,
            masks: staged_all("masked directory", masks)?,
            image: image.map(|i| ImagePlan::new(i, in_template)).transpose()?,
            rootless,
            synthetic: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
23 22 0:5 / /proc rw - proc proc rw
24 22 0:6 / /sys rw - sysfs sysfs rw
25 24 0:7 / /sys/fs/cgroup rw - tmpfs tmpfs rw
26 22 0:8 / /dev rw - devtmpfs dev rw
27 22 0:9 / /tmp rw - tmpfs tmpfs rw
28 22 254:1 / /srv/my\\040data rw - ext4 /dev/vdb rw
29 22 254:1 / /srv/my\\040data rw - ext4 /dev/vdb rw
30 22 0:10 / /run rw - tmpfs tmpfs rw
31 30 0:11 / /run/user/0 rw - tmpfs tmpfs rw
";

    #[test]
    fn host_view_skips_private_trees_and_repeats() {
        assert_eq!(
            host_view_mounts(MOUNTINFO),
            vec![PathBuf::from("/"), PathBuf::from("/srv/my data")]
        );
    }

    #[test]
    fn root_is_always_first() {
        assert_eq!(host_view_mounts(""), vec![PathBuf::from("/")]);
        // As after switch_root: moved mounts are listed before the root they now sit on.
        let moved = "\
24 29 0:5 / /dev rw - devtmpfs dev rw
26 29 254:0 / /mnt/v2disk rw - ext4 /dev/vda rw
29 1 0:23 / / rw - overlay overlay rw
33 29 0:29 / /work/a/b rw - 9p share0 rw
31 29 0:29 / /work rw - 9p share1 rw
";
        assert_eq!(
            host_view_mounts(moved),
            ["/", "/work", "/mnt/v2disk", "/work/a/b"]
                .map(PathBuf::from)
                .to_vec()
        );
    }

    #[test]
    fn staged_paths_and_mountpoints_below_fresh_trees() {
        assert_eq!(staged("/tmp", Path::new("/")), PathBuf::from("/tmp"));
        assert_eq!(staged("/tmp", Path::new("/a/b")), PathBuf::from("/tmp/a/b"));
        assert_eq!(staged("/", Path::new("/a/b")), PathBuf::from("/a/b"));
        assert_eq!(staged("/", Path::new("/")), PathBuf::from("/"));
        let t = staged_target(
            "/tmp",
            "scratch",
            Path::new("/p/.psyduck/scratch/1/slot-0"),
            &[PathBuf::from("/tmp"), PathBuf::from("/p/.psyduck")],
        )
        .unwrap();
        assert_eq!(t.path.to_str().unwrap(), "/tmp/p/.psyduck/scratch/1/slot-0");
        let dirs: Vec<_> = t.mkdirs.iter().map(|d| d.to_str().unwrap()).collect();
        assert_eq!(
            dirs,
            [
                "/tmp/p/.psyduck/scratch",
                "/tmp/p/.psyduck/scratch/1",
                "/tmp/p/.psyduck/scratch/1/slot-0"
            ]
        );
        let outside =
            staged_target("/tmp", "x", Path::new("/srv/x"), &[PathBuf::from("/tmp")]).unwrap();
        assert!(outside.mkdirs.is_empty());
    }

    #[test]
    fn octal_escapes_are_undone() {
        assert_eq!(unescape("/a\\040b\\011c"), "/a b\tc");
        assert_eq!(unescape("/plain\\x"), "/plain\\x");
    }
}
