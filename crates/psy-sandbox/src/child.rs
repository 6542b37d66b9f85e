//! The container's init: runs in the child of `clone3`, sets up the namespaces' view of the
//! world, starts the test as its child, reaps every orphan and exits with the test.
//!
//! Everything here runs in a copy of a multi-threaded process, so it may only make raw syscalls:
//! no allocation, no locks, no panics (hence no indexing or unwrap). All inputs were prepared by
//! [`Prepared`] before the clone.

use crate::error::SetupStep;
use crate::prepared::{BindTarget, Prepared};
use crate::sys::{self, MountAttr};
use crate::{confine, rootfs};
use std::ffi::CStr;
use std::os::fd::RawFd;

/// A message on the status pipe: `[kind, a, b]` as native-endian i32s (atomic: < PIPE_BUF).
pub(crate) const MSG_SETUP_ERROR: i32 = 1;
pub(crate) const MSG_TEST_EXITED: i32 = 2;
/// Storage bytes read / written by the test and everything the init reaped (`/proc/self/io`
/// of the init, which the kernel sums over reaped children): `[kind, low 32 bits, high 32]`.
pub(crate) const MSG_IO_READ: i32 = 3;
pub(crate) const MSG_IO_WRITE: i32 = 4;
/// A held container is set up and waits for the process that joins it (`ContainerSpec::hold`).
pub(crate) const MSG_HELD: i32 = 5;
pub(crate) const MSG_LEN: usize = 12;

/// `CAP_NET_ADMIN` from `<linux/capability.h>` (not exported by the libc crate).
const CAP_NET_ADMIN: libc::c_ulong = 12;

pub(crate) unsafe fn report(fd: RawFd, kind: i32, a: i32, b: i32) {
    let mut buf = [0u8; MSG_LEN];
    buf[0..4].copy_from_slice(&kind.to_ne_bytes());
    buf[4..8].copy_from_slice(&a.to_ne_bytes());
    buf[8..12].copy_from_slice(&b.to_ne_bytes());
    libc::write(fd, buf.as_ptr().cast(), MSG_LEN);
}

pub(crate) unsafe fn fail(fd: RawFd, step: SetupStep) -> ! {
    report(fd, MSG_SETUP_ERROR, step.code(), sys::errno());
    libc::_exit(126)
}

/// Returns `r` (a C-style result) or aborts the set-up at `step` when it is negative.
pub(crate) unsafe fn check_or_fail(fd: RawFd, step: SetupStep, r: libc::c_int) -> libc::c_int {
    if r < 0 {
        fail(fd, step);
    }
    r
}

/// Runs `$e` (a C-style call returning < 0 on error) and aborts the set-up at `$step` on error.
macro_rules! check {
    ($fd:expr, $step:expr, $e:expr) => {{
        let r = $e;
        if r < 0 {
            fail($fd, $step);
        }
        r
    }};
}

pub(crate) unsafe fn write_file(path: &CStr, data: &[u8]) -> libc::c_int {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return -1;
    }
    let n = libc::write(fd, data.as_ptr().cast(), data.len());
    libc::close(fd);
    if n < 0 {
        -1
    } else {
        0
    }
}

unsafe fn mount(
    src: &CStr,
    target: &CStr,
    fstype: &CStr,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> libc::c_int {
    let data = data.map_or(std::ptr::null(), |d| d.as_ptr().cast());
    libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), flags, data)
}

unsafe fn loopback_up() -> libc::c_int {
    let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    if sock < 0 {
        return -1;
    }
    let mut ifr: libc::ifreq = std::mem::zeroed();
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    let r = libc::ioctl(sock, libc::SIOCSIFFLAGS, &ifr);
    libc::close(sock);
    r
}

/// Attaches a detached mount tree (from `open_tree`) at `target.path`, creating mount points
/// inside the private `/tmp` first when needed.
pub(crate) unsafe fn make_mountpoint(status: RawFd, target: &BindTarget) {
    for dir in &target.mkdirs {
        // An existing directory is fine. Asked with `stat`, not `errno`: the init shares the
        // launcher's thread-local errno (`shared_init`), which the launcher may overwrite between
        // our failed call and our read of it (an EEXIST seen as EINVAL failed a container).
        if libc::mkdir(dir.as_ptr(), 0o755) < 0 && !is_dir(dir) {
            fail(status, SetupStep::MkdirMountpoint);
        }
    }
}

/// Whether `path` is a directory (without allocating or reading errno).
pub(crate) unsafe fn is_dir(path: &CStr) -> bool {
    let mut st: libc::stat = std::mem::zeroed();
    libc::stat(path.as_ptr(), &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

pub(crate) unsafe fn attach(status: RawFd, tree: RawFd, target: &BindTarget, step: SetupStep) {
    make_mountpoint(status, target);
    check!(status, step, sys::move_mount_to(tree, &target.path));
    libc::close(tree);
}

/// The container's init (PID 1 of the new PID namespace). Never returns.
///
/// # Safety
/// Must only be called in the child of a fork-like `clone3`, with `p` prepared in the parent.
pub(crate) unsafe fn container_init(p: &Prepared) -> ! {
    let status = p.status_fd();
    // If psy dies, so does this init, and with it every process of the PID namespace.
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    if p.psy_pidfd >= 0 {
        // psy may have died before the death signal was armed.
        let mut psy = libc::pollfd {
            fd: p.psy_pidfd,
            events: libc::POLLIN,
            revents: 0,
        };
        if libc::poll(&mut psy, 1, 0) != 0 {
            libc::_exit(1);
        }
    }

    if let Some(maps) = &p.id_maps {
        // An unprivileged user may map only its own ids, and only after denying setgroups.
        check!(
            status,
            SetupStep::UserNamespace,
            write_file(c"/proc/self/setgroups", b"deny")
        );
        check!(
            status,
            SetupStep::UserNamespace,
            write_file(c"/proc/self/gid_map", maps.gid_map.as_bytes())
        );
        check!(
            status,
            SetupStep::UserNamespace,
            write_file(c"/proc/self/uid_map", maps.uid_map.as_bytes())
        );
    }
    check!(
        status,
        SetupStep::Hostname,
        libc::sethostname(p.hostname.as_ptr(), p.hostname.as_bytes().len())
    );
    let template = p.hardened.as_ref().map_or(-1, |h| h.template);
    // With a template the init is still in its launcher's mount namespace until it joins it.
    if template < 0 {
        check!(
            status,
            SetupStep::PrivateMounts,
            mount(c"none", c"/", c"", libc::MS_REC | libc::MS_PRIVATE, None)
        );
    }
    match &p.hardened {
        Some(h) => {
            // Before /sys is mounted: sysfs shows the network namespace of who mounts it.
            join_network(p, status);
            if template >= 0 && h.root.image.is_some() {
                rootfs::image_build::enter_image_template(
                    p,
                    &h.root,
                    template,
                    h.userns,
                    h.slot_root,
                    status,
                );
            } else if template >= 0 {
                rootfs::build::enter_template(p, &h.root, template, h.userns, h.slot_root, status);
            } else {
                rootfs::build::build_and_enter(p, &h.root, h.userns, h.slot_root, status);
            }
        }
        None => {
            privileged_view(p, status);
            join_network(p, status);
            privileged_sys(status);
        }
    }
    check!(status, SetupStep::Chdir, libc::chdir(p.cwd.as_ptr()));
    if let Some(offsets) = &p.timens_offsets {
        // The namespace's offsets are frozen when its first process enters it: set them now,
        // before the test does (at its clone).
        let step = SetupStep::TimeNamespace;
        check!(status, step, libc::unshare(crate::timens::CLONE_NEWTIME));
        check!(
            status,
            step,
            write_file(c"/proc/self/timens_offsets", offsets)
        );
    }
    if p.hold {
        crate::init_wait::hold(status);
    }

    // vfork-style: the test shares our memory until it execs, so nothing is copied.
    let stack = p.test_stack.as_ptr() as usize + p.test_stack.len();
    let stack_top = (stack & !15) as *mut libc::c_void;
    let mut flags = libc::CLONE_VFORK | libc::SIGCHLD;
    // Before Linux 6.x a child sharing our memory may not enter another time namespace
    // (clone fails with EINVAL): with a clock offset the test gets a copy.
    if !p
        .hardened
        .as_ref()
        .is_some_and(|h| h.confinement.needs_own_memory())
        && p.timens_offsets.is_none()
    {
        flags |= libc::CLONE_VM;
    }
    let test_pid = libc::clone(
        exec_trampoline,
        stack_top,
        flags,
        p as *const Prepared as *mut libc::c_void,
    );
    check!(status, SetupStep::ForkTest, test_pid);
    // Keep only the status pipe: stray descriptors inherited from psy must not live on here.
    if status > 0 {
        libc::syscall(libc::SYS_close_range, 0, status - 1, 0);
    }
    libc::syscall(libc::SYS_close_range, status + 1, libc::c_uint::MAX, 0);
    crate::init_wait::reap_until_test_exits(status, test_pid)
}

/// The privileged view: the host's root read-only in place, a private `/tmp`, the scratch area
/// and volumes, a fresh `/proc` (unmasked, as Docker's `--privileged`). Nothing is locked: a privileged test
/// keeps host root's powers and could undo any of it.
unsafe fn privileged_view(p: &Prepared, status: RawFd) {
    // Detached copies of the writable scratch dir and (if /tmp will hide it) the project dir,
    // taken before the root becomes read-only and /tmp is replaced.
    let clone_flags = sys::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    // A scratch disk is mounted later instead; -1: no tree to attach.
    let scratch_tree = if p.scratch_device.is_some() {
        -1
    } else {
        check!(
            status,
            SetupStep::CloneScratch,
            sys::open_tree(&p.scratch_source, clone_flags)
        )
    };
    let rdonly = MountAttr {
        attr_set: sys::MOUNT_ATTR_RDONLY,
        ..MountAttr::default()
    };
    let mut writable_trees = [-1; crate::spec::MAX_WRITABLE];
    for ((source, _), slot) in p.writable.iter().zip(writable_trees.iter_mut()) {
        *slot = check!(
            status,
            SetupStep::MountWritable,
            sys::open_tree(source, clone_flags)
        );
    }
    let read_only_bind = MountAttr {
        attr_set: sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
        ..MountAttr::default()
    };
    let mut readonly_trees = [-1; crate::spec::MAX_WRITABLE];
    for ((source, _), slot) in p.readonly.iter().zip(readonly_trees.iter_mut()) {
        let fd = check!(
            status,
            SetupStep::MountReadOnly,
            sys::open_tree(source, clone_flags)
        );
        let flags = libc::AT_EMPTY_PATH as libc::c_uint;
        check!(
            status,
            SetupStep::MountReadOnly,
            sys::mount_setattr(fd, c"", flags, &read_only_bind)
        );
        *slot = fd;
    }
    let project_tree = match &p.project {
        Some(project) => {
            let fd = check!(
                status,
                SetupStep::CloneProject,
                sys::open_tree(&project.source, clone_flags | sys::AT_RECURSIVE)
            );
            let flags = libc::AT_EMPTY_PATH as libc::c_uint | sys::AT_RECURSIVE;
            check!(
                status,
                SetupStep::ReadOnlyProject,
                sys::mount_setattr(fd, c"", flags, &rdonly)
            );
            fd
        }
        None => -1,
    };
    check!(
        status,
        SetupStep::ReadOnlyRoot,
        sys::mount_setattr(libc::AT_FDCWD, c"/", sys::AT_RECURSIVE, &rdonly)
    );
    // A privileged test manages the host: cgroups (/sys/fs/cgroup), devices (/dev), named
    // network namespaces (/run/netns) stay writable as on the host; only files are read-only.
    let writable_again = MountAttr {
        attr_clr: sys::MOUNT_ATTR_RDONLY,
        ..MountAttr::default()
    };
    for tree in [c"/sys", c"/dev", c"/run"] {
        // A host without one of them has nothing to make writable there.
        sys::mount_setattr(libc::AT_FDCWD, tree, sys::AT_RECURSIVE, &writable_again);
    }

    let tmpfs_flags = libc::MS_NOSUID | libc::MS_NODEV;
    check!(
        status,
        SetupStep::MountTmp,
        mount(
            c"tmpfs",
            c"/tmp",
            c"tmpfs",
            tmpfs_flags,
            Some(&p.tmpfs_options)
        )
    );
    if p.has_shm {
        check!(
            status,
            SetupStep::MountShm,
            mount(
                c"tmpfs",
                c"/dev/shm",
                c"tmpfs",
                tmpfs_flags,
                Some(&p.tmpfs_options)
            )
        );
    }
    for ((_, target), fd) in p.readonly.iter().zip(readonly_trees) {
        attach(status, fd, target, SetupStep::MountReadOnly);
    }
    if let Some(project) = &p.project {
        attach(
            status,
            project_tree,
            &project.target,
            SetupStep::MountProject,
        );
    }
    for ((_, target), fd) in p.writable.iter().zip(writable_trees) {
        attach(status, fd, target, SetupStep::MountWritable);
    }
    for (device, target) in &p.volumes {
        make_mountpoint(status, target);
        let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
        if p.sync_mounts {
            flags |= libc::MS_SYNCHRONOUS;
        }
        check!(
            status,
            SetupStep::MountVolume,
            mount(device, &target.path, c"ext4", flags, None)
        );
    }
    match &p.scratch_device {
        Some(device) => {
            make_mountpoint(status, &p.scratch);
            let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
            if p.sync_mounts {
                flags |= libc::MS_SYNCHRONOUS;
            }
            check!(
                status,
                SetupStep::MountScratchDisk,
                mount(device, &p.scratch.path, c"ext4", flags, None)
            );
            if let Some(lost_found) = &p.scratch_lost_found {
                libc::rmdir(lost_found.as_ptr());
            }
        }
        None => attach(status, scratch_tree, &p.scratch, SetupStep::MountScratch),
    }
    // A fresh /proc shows only this PID namespace's processes.
    let proc_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    check!(
        status,
        SetupStep::MountProc,
        mount(c"proc", c"/proc", c"proc", proc_flags, None)
    );
    // No read-only /proc/sys (nor runc's masks), as with `docker run --privileged`: the test has
    // host root's powers and could unmount them anyway, and a /proc with anything mounted over it
    // is not "fully visible", so a user namespace nested in this container (psy run by the test,
    // as an ordinary user) could not mount a /proc of its own. Its network namespace is never
    // recycled (the lease is tainted), so network sysctls it changes reach no other test.
}

/// A sysfs of the test's own network namespace at `/sys` (the host's would list the host's
/// interfaces: sysfs shows the namespace of who mounts it), with the host's cgroup mounts
/// carried over, since a privileged test may manage cgroups. Runs after `join_network`.
unsafe fn privileged_sys(status: RawFd) {
    let flags = sys::OPEN_TREE_CLONE | sys::AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint;
    let cgroups = sys::open_tree(c"/sys/fs/cgroup", flags);
    let hidden = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    check!(
        status,
        SetupStep::MountSys,
        mount(c"sysfs", c"/sys", c"sysfs", hidden, None)
    );
    if cgroups >= 0 {
        check!(
            status,
            SetupStep::MountSys,
            sys::move_mount_to(cgroups, c"/sys/fs/cgroup")
        );
        libc::close(cgroups);
    }
}

/// Joins the pre-made network namespace, or brings up loopback in the new one.
unsafe fn join_network(p: &Prepared, status: RawFd) {
    match &p.netns {
        Some(netns) => {
            check!(
                status,
                SetupStep::JoinNetns,
                libc::setns(*netns, libc::CLONE_NEWNET)
            );
        }
        None => {
            check!(status, SetupStep::Loopback, loopback_up());
        }
    }
}

extern "C" fn exec_trampoline(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the init's `Prepared`, alive (the init is suspended) until we exec.
    unsafe {
        let p = &*(arg as *const Prepared);
        exec_test(p, p.status_fd())
    }
}

unsafe fn exec_test(p: &Prepared, status: RawFd) -> ! {
    // Only the test joins the container's cgroups; the init stays in the launcher's. The init
    // shares the launcher's memory, and the kernel kills every process sharing an OOM victim's
    // memory: an init inside the test's memory cgroup (picked as the victim, or killed with the
    // group by `memory.oom.group` on v2) took the launcher and every other container with it.
    // Its kernel objects (mounts, namespaces) are not charged to a small memory limit either.
    for procs in &p.cgroup_procs {
        // "0" means the writing process itself: no pid translation across namespaces needed.
        check!(
            status,
            SetupStep::JoinCgroup,
            libc::write(*procs, b"0".as_ptr().cast(), 1)
        );
    }
    if let Some(h) = &p.hardened {
        // A cgroup namespace rooted at the test's own cgroup, made while still host root (so
        // the host's user namespace owns it and the test cannot mount cgroup filesystems).
        check!(
            status,
            SetupStep::CgroupNamespace,
            libc::unshare(libc::CLONE_NEWCGROUP)
        );
        if h.root.cgroup2 {
            // The container's own cgroup at /sys/fs/cgroup, read-only (the root is entered).
            let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_RDONLY;
            check!(
                status,
                SetupStep::MountSys,
                mount(c"cgroup2", c"/sys/fs/cgroup", c"cgroup2", flags, None)
            );
        }
    }
    check!(status, SetupStep::Stdio, libc::dup2(p.stdin, 0));
    check!(status, SetupStep::Stdio, libc::dup2(p.stdout, 1));
    check!(status, SetupStep::Stdio, libc::dup2(p.stderr, 2));
    if let Some(h) = &p.hardened {
        confine::confine(h.confinement, h.userns, h.seccomp.as_ref(), status);
    }
    // Psy owns the container's network (interfaces, addresses, shaping, and the namespace it
    // hands to the next test): the test may use it but not reconfigure it.
    // A privileged test keeps every power (it may manage the host's network); its namespace is
    // not lent again.
    if p.hardened.is_some() {
        check!(
            status,
            SetupStep::DropNetAdmin,
            libc::prctl(libc::PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0)
        );
    }
    if let Some(h) = p.hardened.as_ref() {
        if h.confinement != confine::Confinement::NestedUserns {
            confine::become_user(h.user, status);
        }
    }
    // Everything else psy had open closes at exec.
    libc::syscall(
        libc::SYS_close_range,
        3,
        libc::c_uint::MAX,
        libc::CLOSE_RANGE_CLOEXEC,
    );
    // Rust ignores SIGPIPE; tests expect the default. Unblock everything psy may have blocked.
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    for exe in &p.exe {
        libc::execve(exe.as_ptr(), p.argv_ptrs.as_ptr(), p.envp_ptrs.as_ptr());
    }
    fail(status, SetupStep::Exec)
}
