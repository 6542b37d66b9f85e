//! Turns a [`ContainerSpec`] into the C strings, pointer arrays and file descriptors that the
//! container's init uses after `clone3`, where it may not allocate.

use crate::confine::Confinement;
use crate::error::SandboxError;
use crate::rootfs::build::MAX_PREMADE_VOLUMES;
use crate::rootfs::{plan, HostView, RootPlan, STAGE};
use crate::seccomp::{self, Allowances, SockFprog};
use crate::spec::ContainerSpec;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A host directory to show at the same path inside the container, plus the directories to create
/// first when it lies below a directory the container overmounts (`/tmp`).
#[derive(Debug)]
pub(crate) struct BindTarget {
    pub(crate) path: CString,
    /// Empty unless the target is hidden by the private `/tmp`: then each prefix, shortest first.
    pub(crate) mkdirs: Vec<CString>,
}

/// Enough for `exec_test` (a few frames, no allocation).
const TEST_STACK_BYTES: usize = 64 << 10;

/// Everything the child needs, allocated before `clone3`.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// Where the command is: one path, or in an image every `PATH` candidate, tried in turn
    /// by the test (as `execvp`), since the image's files are only seen from inside.
    pub(crate) exe: Vec<CString>,
    // The pointer arrays point into these; keep them alive as long as the arrays.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    pub(crate) argv_ptrs: Vec<*const libc::c_char>,
    pub(crate) envp_ptrs: Vec<*const libc::c_char>,
    pub(crate) cwd: CString,
    pub(crate) hostname: CString,
    pub(crate) tmpfs_options: CString,
    /// Where the scratch area is mounted (inside the stage when hardened) ...
    pub(crate) scratch: BindTarget,
    /// ... and the host directory it comes from (unless it is a scratch disk).
    pub(crate) scratch_source: CString,
    /// `None` when the project directory stays visible through the read-only root anyway.
    pub(crate) project: Option<ProjectMount>,
    pub(crate) has_shm: bool,
    // Descriptor numbers only: the descriptors themselves are owned by the caller of `new`, which
    // closes its copies right after the clone while the child may still read this struct.
    pub(crate) cgroup_procs: Vec<RawFd>,
    pub(crate) stdout: RawFd,
    pub(crate) stderr: RawFd,
    pub(crate) stdin: RawFd,
    /// Write end of the status pipe (the init reports set-up errors and the test's exit on it).
    pub(crate) status_tx: RawFd,
    /// `Some((uid, gid))` when the container gets its own user namespace (unprivileged mode).
    pub(crate) id_maps: Option<IdMaps>,
    /// A ready network namespace to join; `None`: `clone3` makes a new one.
    pub(crate) netns: Option<RawFd>,
    /// Stack of the vfork-style child that execs the test.
    pub(crate) test_stack: Vec<u8>,
    /// A pidfd of psy (-1 if unknown): readable once psy has exited.
    pub(crate) psy_pidfd: RawFd,
    /// A loop device to mount (ext4) over the scratch directory instead of binding it, and the
    /// `lost+found` mkfs leaves there (removed so the test starts with an empty directory).
    pub(crate) scratch_device: Option<CString>,
    pub(crate) scratch_lost_found: Option<CString>,
    /// Mount the scratch disk with `MS_SYNCHRONOUS`.
    pub(crate) sync_mounts: bool,
    /// Volumes: a loop device to mount (ext4) at each target.
    pub(crate) volumes: Vec<(CString, BindTarget)>,
    /// `None`: the privileged view (host root read-only, host root's powers).
    pub(crate) hardened: Option<Hardened>,
    /// `writable` directories: `(host path, where it is mounted)`.
    pub(crate) writable: Vec<(CString, BindTarget)>,
    /// `readonly` directories: `(host path, where it is mounted)`.
    pub(crate) readonly: Vec<(CString, BindTarget)>,
    /// [`crate::ContainerSpec::hold`]: the init starts no test and waits to be killed.
    pub(crate) hold: bool,
}

/// The project directory, cloned from `source` and shown at `target` (when `/tmp` hides it).
#[derive(Debug)]
pub(crate) struct ProjectMount {
    pub(crate) source: CString,
    pub(crate) target: BindTarget,
}

/// A hardened container: its own root and a confined test.
#[derive(Debug)]
pub(crate) struct Hardened {
    pub(crate) root: RootPlan,
    pub(crate) confinement: Confinement,
    /// The slot's user namespace (`SlotUserns`), else -1.
    pub(crate) userns: RawFd,
    /// The host uid (and gid) of the slot's root, 0 without a slot.
    pub(crate) slot_root: u32,
    /// The filter the test loads; `None` when it inherits the launcher's (see `seccomp.rs`).
    pub(crate) seccomp: Option<SockFprog>,
    /// The slot's template root to copy (`rootfs::template`), else -1: the init builds it all.
    pub(crate) template: RawFd,
    /// `(uid, gid)` the test becomes after confinement (an image's `User`).
    pub(crate) user: Option<(u32, u32)>,
}

/// What makes a container hardened, as the launcher knows it.
#[derive(Debug)]
pub(crate) struct HardenedInput<'a> {
    pub(crate) view: &'a HostView,
    /// Directories to hide (psy's state directory).
    pub(crate) masks: &'a [PathBuf],
    pub(crate) confinement: Confinement,
    /// The slot's user namespace and the host id its root maps to.
    pub(crate) userns: Option<(OwnedFd, u32)>,
    pub(crate) allow: Allowances,
    /// The slot's template root (`rootfs::template`), when there is one.
    pub(crate) template: Option<RawFd>,
}

/// The single-id maps an unprivileged user may write for its own new user namespace.
#[derive(Debug)]
pub(crate) struct IdMaps {
    pub(crate) uid_map: CString,
    pub(crate) gid_map: CString,
}

pub(crate) fn cstring(what: &'static str, s: impl AsRef<OsStr>) -> Result<CString, SandboxError> {
    CString::new(s.as_ref().as_bytes()).map_err(|_| SandboxError::NulByte {
        what,
        value: s.as_ref().to_string_lossy().into_owned(),
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Resolves `argv[0]` like `execvp` would, but against the test's own `PATH` and `cwd`.
///
/// `as_other`: the test will not be host root and cannot see host root's files as its own (no
/// id-mapped host view), so a candidate must be reachable and executable by "others" (a pyenv
/// Python under `/root` is skipped for the next one on `PATH`, as `execvp` would inside).
pub(crate) fn resolve_command(
    command: &str,
    env: &[(String, String)],
    cwd: &Path,
    as_other: bool,
) -> Result<PathBuf, SandboxError> {
    let is_executable = |p: &Path| {
        let mode = |p: &Path| p.metadata().map(|m| m.permissions().mode()).unwrap_or(0);
        let runnable = p
            .metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        runnable
            && (!as_other
                || (mode(p) & 0o001 != 0
                    && p.ancestors().skip(1).all(|dir| mode(dir) & 0o001 != 0)))
    };
    if command.contains('/') {
        let p = cwd.join(command);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(SandboxError::CommandNotFound {
                command: command.into(),
                path: String::new(),
                cwd: cwd.into(),
            })
        };
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/usr/local/bin:/usr/bin:/bin");
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| cwd.join(d).join(command))
        .find(|p| is_executable(p))
        .ok_or_else(|| SandboxError::CommandNotFound {
            command: command.into(),
            path: path.into(),
            cwd: cwd.into(),
        })
}

/// The paths `execvp` would try for `argv[0]` inside an image: `argv[0]` itself (from `cwd`)
/// when it has a `/`, else each directory of the test's `PATH` (Docker's default without one).
fn image_candidates(
    argv: &[String],
    env: &[(String, String)],
    cwd: &Path,
) -> Result<Vec<CString>, SandboxError> {
    let command = argv.first().map(String::as_str).unwrap_or_default();
    if command.contains('/') {
        return Ok(vec![cstring("command", cwd.join(command))?]);
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_IMAGE_PATH, |(_, v)| v.as_str());
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| cstring("command", cwd.join(d).join(command)))
        .collect()
}

/// `PATH` in an image whose test sets none (Docker's).
pub const DEFAULT_IMAGE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(crate) fn bind_target(
    what: &'static str,
    path: &Path,
    overmounted: &Path,
) -> Result<BindTarget, SandboxError> {
    let mut mkdirs = Vec::new();
    if path.starts_with(overmounted) {
        let mut acc = PathBuf::new();
        for comp in path.components() {
            acc.push(comp);
            if acc.starts_with(overmounted) && acc != overmounted {
                mkdirs.push(cstring(what, &acc)?);
            }
        }
    }
    Ok(BindTarget {
        path: cstring(what, path)?,
        mkdirs,
    })
}

impl Prepared {
    /// `exe`: `argv[0]` resolved by [`resolve_command`]. Returns the descriptors it refers to,
    /// for the caller to keep open until the clone and close after it.
    #[allow(clippy::too_many_arguments)] // one per part of the launch; a struct would only rename them
    pub(crate) fn new(
        spec: ContainerSpec,
        exe: &Path,
        cgroup_procs: Vec<OwnedFd>,
        status_tx: OwnedFd,
        stdin: OwnedFd,
        id_maps: Option<IdMaps>,
        netns: Option<OwnedFd>,
        hardened: Option<HardenedInput<'_>>,
    ) -> Result<(Self, Vec<OwnedFd>), SandboxError> {
        let argv = spec
            .argv
            .iter()
            .map(|a| cstring("argument", a))
            .collect::<Result<Vec<_>, _>>()?;
        let envp = spec
            .env
            .iter()
            .map(|(k, v)| cstring("environment variable", format!("{k}={v}")))
            .collect::<Result<Vec<_>, _>>()?;
        let tmp = Path::new("/tmp");
        let image = spec.image.as_ref();
        // Inside an image the project may appear elsewhere (`project-path`): so do its masks.
        let project_at = image.and_then(|i| i.project_path.clone());
        let moved = |path: &Path| match (&project_at, path.strip_prefix(&spec.project_dir)) {
            (Some(at), Ok(rel)) => at.join(rel),
            _ => path.to_path_buf(),
        };
        if image.is_some() && hardened.is_none() {
            return Err(SandboxError::Image {
                reason: "a privileged test runs on the host's root: it cannot have an image".into(),
            });
        }
        // Trees the container mounts fresh: a mount target below one needs its directories made.
        let mut fresh_trees = vec![tmp.to_path_buf()];
        if let Some(h) = &hardened {
            fresh_trees.extend(h.masks.iter().map(|m| moved(m)));
        }
        if image.is_some() {
            // Nothing of the host's is in an image: every directory of a target may be missing.
            fresh_trees.push(PathBuf::from("/"));
        }
        let is_hardened = hardened.is_some();
        // Without a template the init builds the root in the stage; with one it stands in it.
        let template = hardened.as_ref().and_then(|h| h.template);
        if is_hardened && spec.volumes.len() > MAX_PREMADE_VOLUMES {
            return Err(SandboxError::TooManyVolumes {
                count: spec.volumes.len(),
                max: MAX_PREMADE_VOLUMES,
            });
        }
        let stage = match (image, template) {
            (Some(_), Some(_)) => crate::rootfs::image::stage(crate::rootfs::image::IN_TEMPLATE),
            (Some(image), None) => {
                crate::rootfs::image::stage(crate::rootfs::image::layers_at(image)?)
            }
            (None, Some(_)) => "/".to_owned(),
            (None, None) => STAGE.to_owned(),
        };
        let stage = stage.as_str();
        let target = |what, path: &Path| match is_hardened {
            true => plan::staged_target(stage, what, path, &fresh_trees),
            false => bind_target(what, path, tmp),
        };
        let project = if spec.project_dir.starts_with(tmp) || image.is_some() {
            Some(ProjectMount {
                source: cstring("project directory", &spec.project_dir)?,
                target: match is_hardened {
                    true => plan::staged_target(
                        stage,
                        "project directory",
                        project_at.as_deref().unwrap_or(&spec.project_dir),
                        &fresh_trees,
                    )?,
                    false => bind_target("project directory", &spec.project_dir, tmp)?,
                },
            })
        } else {
            None
        };
        let volumes = spec
            .volumes
            .iter()
            .map(|(_, path)| target("volume path", path))
            .collect::<Result<Vec<_>, _>>()?;
        let binds = |what: &'static str, paths: &[PathBuf]| {
            if paths.len() > crate::spec::MAX_WRITABLE {
                return Err(SandboxError::TooManyWritable {
                    what,
                    count: paths.len(),
                });
            }
            paths
                .iter()
                .map(|path| Ok((cstring(what, path)?, target(what, path)?)))
                .collect::<Result<Vec<_>, SandboxError>>()
        };
        let writable = binds("writable directory", &spec.writable)?;
        let mut readonly = binds("read-only directory", &spec.readonly)?;
        // A scenario's hosts file over the host's (an image gets it in its writable layer).
        if let (Some(hosts), None, true) = (&spec.hosts_file, image, is_hardened) {
            readonly.push((
                cstring("hosts file", hosts)?,
                target("hosts file", Path::new("/etc/hosts"))?,
            ));
            if readonly.len() > crate::spec::MAX_WRITABLE {
                return Err(SandboxError::TooManyWritable {
                    what: "read-only directory",
                    count: readonly.len(),
                });
            }
        }
        let host_root = hardened
            .as_ref()
            .and_then(|h| h.userns.as_ref().map(|(_, id)| *id));
        let mut tmpfs_options = format!("size={},mode=1777", spec.tmp_bytes.max(4096));
        if let Some(id) = host_root {
            tmpfs_options.push_str(&format!(",uid={id},gid={id}"));
        }
        let mut userns_fd = None;
        let hardened = match hardened {
            Some(h) => {
                let rootless = h.confinement == Confinement::NestedUserns;
                let in_userns = h.confinement != Confinement::DockerCaps;
                let masks: Vec<PathBuf> = h.masks.iter().map(|m| moved(m)).collect();
                let root = RootPlan::new(
                    h.view,
                    &masks,
                    rootless,
                    in_userns,
                    stage,
                    image,
                    template.is_some(),
                )?;
                userns_fd = h.userns.map(|(fd, _)| fd);
                Some(Hardened {
                    root,
                    confinement: h.confinement,
                    userns: userns_fd.as_ref().map_or(-1, AsRawFd::as_raw_fd),
                    slot_root: host_root.unwrap_or(0),
                    seccomp: (h.allow != Allowances::default() || !seccomp::launcher_filtered())
                        .then(|| SockFprog::new(seccomp::program(h.allow))),
                    template: h.template.unwrap_or(-1),
                    user: image.and_then(|i| i.user),
                })
            }
            None => None,
        };
        let stdout = OwnedFd::from(spec.stdout);
        let stderr = OwnedFd::from(spec.stderr);
        let prepared = Prepared {
            exe: match image {
                Some(_) => image_candidates(&spec.argv, &spec.env, &spec.cwd)?,
                None => vec![cstring("command", exe)?],
            },
            argv_ptrs: null_terminated(&argv),
            envp_ptrs: null_terminated(&envp),
            _argv: argv,
            _envp: envp,
            cwd: cstring("working directory", &spec.cwd)?,
            hostname: cstring("hostname", &spec.hostname)?,
            tmpfs_options: cstring("tmpfs options", tmpfs_options)?,
            scratch: target("scratch directory", &spec.scratch_dir)?,
            scratch_source: cstring("scratch directory", &spec.scratch_dir)?,
            project,
            has_shm: Path::new("/dev/shm").is_dir(),
            cgroup_procs: cgroup_procs.iter().map(AsRawFd::as_raw_fd).collect(),
            stdout: stdout.as_raw_fd(),
            stderr: stderr.as_raw_fd(),
            stdin: stdin.as_raw_fd(),
            status_tx: status_tx.as_raw_fd(),
            id_maps,
            netns: netns.as_ref().map(AsRawFd::as_raw_fd),
            test_stack: vec![0; TEST_STACK_BYTES],
            psy_pidfd: -1,
            scratch_device: None,
            scratch_lost_found: None,
            sync_mounts: false,
            // The devices are filled in by the launcher; the targets are known here.
            volumes: volumes
                .into_iter()
                .map(|t| (CString::default(), t))
                .collect(),
            writable,
            readonly,
            hold: spec.hold,
            hardened,
        };
        let mut owned = cgroup_procs;
        owned.extend([stdout, stderr, stdin, status_tx]);
        owned.extend(netns);
        owned.extend(userns_fd);
        Ok((prepared, owned))
    }

    pub(crate) fn status_fd(&self) -> RawFd {
        self.status_tx
    }
}

#[cfg(test)]
mod resolve_tests {
    use super::resolve_command;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn as_others_a_program_behind_a_private_directory_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = (dir.path().join("private"), dir.path().join("public"));
        for (d, mode) in [(&private, 0o700), (&public, 0o755)] {
            std::fs::create_dir(d).unwrap();
            let exe = d.join("tool");
            std::fs::write(&exe, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:{}", private.display(), public.display());
        let env = vec![("PATH".to_owned(), path)];
        let cwd = std::path::Path::new("/");
        assert_eq!(
            resolve_command("tool", &env, cwd, false).unwrap(),
            private.join("tool")
        );
        assert_eq!(
            resolve_command("tool", &env, cwd, true).unwrap(),
            public.join("tool")
        );
    }
}
