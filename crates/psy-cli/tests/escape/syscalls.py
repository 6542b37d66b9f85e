"""Calls the seccomp filter (or the kernel) must refuse, each with arguments that would be valid
enough to get past argument checks if the call were allowed. Prints one line per call and exits 1
if any call was not refused with EPERM (EACCES for the keyring counts too: the keyring is
invisible). Usage: syscalls.py NAME... ; `perf-allowed` checks the opposite."""
import ctypes
import ctypes.util
import errno
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

# x86_64 numbers (the suite runs on x86_64 hosts). Arguments are chosen so that a call that is
# wrongly allowed fails harmlessly (bad pointer, no such module, invalid flags) or does nothing.
CALLS = {
    "keyctl": (250, [0, -3, 0]),  # KEYCTL_GET_KEYRING_ID of the session keyring
    "add_key": (248, [b"user", b"psy-escape", b"x", 1, -3]),
    "request_key": (249, [b"user", b"psy-escape", 0, -3]),
    "init_module": (175, [0, 0, b""]),
    "finit_module": (313, [-1, b"", 0]),
    "delete_module": (176, [b"psy_escape_no_such_module", 0]),
    "kexec_load": (246, [0, 0, 0, 0x7E570000]),  # invalid flags: EINVAL if ever allowed
    "reboot": (169, [0, 0, 0, 0]),
    "swapon": (167, [b"/dev/null", 0]),
    "clock_settime": (227, [0, 0]),
    "settimeofday": (164, [0, 0]),
    "bpf": (321, [0, 0, 0]),
    "perf_event_open": (298, [0, 0, -1, -1, 0]),
    "open_by_handle_at": (304, [-1, 0, 0]),
    "acct": (163, [0]),
}


def call(name):
    nr, args = CALLS[name]
    ctypes.set_errno(0)
    r = libc.syscall(nr, *[a if isinstance(a, bytes) else ctypes.c_long(a) for a in args])
    return r, ctypes.get_errno()


def main(names):
    escaped = False
    for name in names:
        if name == "perf-allowed":
            r, e = call("perf_event_open")
            ok = r < 0 and e != errno.EPERM
            print(f"perf_event_open (allowed): {r} {errno.errorcode.get(e, e)} {'ok' if ok else 'REFUSED'}")
            escaped |= not ok
            continue
        r, e = call(name)
        refused = r < 0 and e in (errno.EPERM, errno.EACCES)
        print(f"{name}: {r} {errno.errorcode.get(e, e)} {'refused' if refused else 'ALLOWED'}")
        escaped |= not refused
    sys.exit(1 if escaped else 0)


main(sys.argv[1:])
