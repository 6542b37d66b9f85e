"""psy's sandbox entry, performed by a forked warm child (see `JoinEntry` in psy-sandbox's `entry.rs`).

psy holds a container set up for the test (namespaces, root, cgroup with the test's limits) and
sends the entry: a fixed list of system calls with every decision made. This module performs them
with ctypes, in the order `entry.rs` documents; any failure raises, and the child must then exit
without running the test. Loaded into the worker's source before `warm_worker.py`.
"""

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000

PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
        _libc.unshare.argtypes = [ctypes.c_int]
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
        _libc.capset.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    return _libc


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _check(result, what):
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"sandbox entry: {what}: {os.strerror(errno)}")
    return result


def entry_kind(entry):
    return (entry or {}).get("kind", "none")


def prepare_join(entry):
    """In the forking process, before the fork: a pidfd of the held init. Loads libc here, in
    the parent, so no child pays for it."""
    _c()
    return os.pidfd_open(int(entry["init_pid"]))


def fork_into(entry, pidfd, fork):
    """Forks with the child born in the container's PID namespace when this process may enter it
    for its children (root); otherwise a plain fork (the child joins it itself, `join`)."""
    if not entry.get("pid_namespace_by_parent"):
        return fork()
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_c().setns(pidfd, CLONE_NEWPID), "entering the container's PID namespace for the child")
        pid = None
        try:
            pid = fork()
        finally:
            # Back to our own namespace in the parent (also when the fork failed): the worker's
            # next child must not land in this container. If that is impossible, stop serving.
            if pid != 0 and _c().setns(own, CLONE_NEWPID) < 0:
                os._exit(71)
        return pid
    finally:
        os.close(own)


def join(entry, pidfd, keep):
    """In the child: become the held container's test (steps 2 to 7 of `entry.rs`). Descriptors
    in `keep` (beside 0, 1 and 2) stay open. Returns in the process that runs the test."""
    libc = _c()
    for procs in entry.get("cgroup_procs") or []:
        fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
    slot = None
    if entry.get("slot_userns"):
        slot = os.open(entry["slot_userns"], os.O_RDONLY | os.O_CLOEXEC)
    _check(libc.setns(pidfd, int(entry["namespaces"])), "joining the container's namespaces")
    os.close(pidfd)
    if int(entry["namespaces"]) & CLONE_NEWPID:
        _fork_and_mirror()
    if entry.get("cgroup_namespace"):
        _check(libc.unshare(CLONE_NEWCGROUP), "a cgroup namespace")
    if entry.get("mount_cgroup2"):
        flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY
        _check(libc.mount(b"cgroup2", b"/sys/fs/cgroup", b"cgroup2", flags, None), "mounting /sys/fs/cgroup")
    if slot is not None:
        _check(libc.setns(slot, CLONE_NEWUSER), "joining the slot's user namespace")
        os.close(slot)
        os.setresgid(0, 0, 0)
        os.setgroups([])
        os.setresuid(0, 0, 0)
    if entry.get("nested_userns"):
        _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "a nested user namespace")
        for name, text in (("setgroups", b"deny"), ("gid_map", b"0 0 1"), ("uid_map", b"0 0 1")):
            fd = os.open(f"/proc/self/{name}", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, text)
            finally:
                os.close(fd)
    if entry.get("seccomp"):
        _install_filter(entry["seccomp"])
    if entry.get("keep_capabilities") is not None:
        _keep_capabilities(int(entry["keep_capabilities"]))
    for cap in entry.get("drop_bounding") or []:
        _check(libc.prctl(PR_CAPBSET_DROP, int(cap), None, 0, 0), f"dropping capability {cap}")
    if entry.get("user"):
        uid, gid = entry["user"]
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    os.chdir(entry["cwd"])
    _close_all_but(set(keep) | {0, 1, 2})


def _fork_and_mirror():
    """Rootless: only a child of this process is in the PID namespace. The grandchild returns to
    run the test; this process waits for it and ends the same way (its code, or its signal)."""
    pid = os.fork()
    if pid == 0:
        return
    _close_all_but({2})
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        import signal

        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 70)


def _install_filter(instructions):
    filters = (_SockFilter * len(instructions))(*[_SockFilter(*ins) for ins in instructions])
    prog = _SockFprog(len(instructions), filters)
    _check(_c().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0), "installing the seccomp filter")


def _keep_capabilities(mask):
    libc = _c()
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_READ, cap, None, 0, 0) < 0:
            break
        if not mask & (1 << cap):
            _check(libc.prctl(PR_CAPBSET_DROP, cap, None, 0, 0), f"dropping capability {cap}")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    low, high = mask & 0xFFFFFFFF, mask >> 32
    data = (_CapData * 2)(_CapData(low, low, 0), _CapData(high, high, 0))
    _check(libc.capset(ctypes.addressof(header), ctypes.addressof(data)), "setting the capabilities")


def _close_all_but(keep):
    last = -1
    for fd in sorted(keep):
        if fd > last + 1:
            os.closerange(last + 1, fd)
        last = fd
    os.closerange(last + 1, 1 << 20)
