//! How a container's init waits once the container is set up: for its test to exit (reaping
//! every orphan meanwhile, then reporting the test's status and storage IO), or, held, for
//! psy's kill. Raw syscalls only, as everything the init runs (see `child.rs`).

use crate::child::{report, MSG_HELD, MSG_IO_READ, MSG_IO_WRITE, MSG_TEST_EXITED};
use std::os::fd::RawFd;

/// Reports `read_bytes` and `write_bytes` of `/proc/self/io` (the container's own `/proc`).
/// Without allocation: a stack buffer and a hand-rolled scan.
unsafe fn report_io(status: RawFd) {
    let fd = libc::open(c"/proc/self/io".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 512];
    let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
    libc::close(fd);
    let Ok(n) = usize::try_from(n) else { return };
    let text = buf.get(..n).unwrap_or(&[]);
    for (key, kind) in [
        (&b"\nread_bytes: "[..], MSG_IO_READ),
        (b"\nwrite_bytes: ", MSG_IO_WRITE),
    ] {
        if let Some(value) = field(text, key) {
            report(
                status,
                kind,
                value as u32 as i32,
                (value >> 32) as u32 as i32,
            );
        }
    }
}

/// The decimal number after `key` in `text`.
fn field(text: &[u8], key: &[u8]) -> Option<u64> {
    let at = text.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = text.get(at..)?.iter().take_while(|b| b.is_ascii_digit());
    let mut value = 0u64;
    for d in digits {
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(value)
}

/// A held container's init (`ContainerSpec::hold`): the namespaces are ready for a process
/// that joins them (`JoinEntry`); wait for psy's kill, reaping whatever is orphaned to us
/// meanwhile (a zombie still counts against the test's `pids` limit). `SIGCHLD` is blocked
/// and waited for: a blocked signal is queued even where its default is to ignore it.
pub(crate) unsafe fn hold(status: RawFd) -> ! {
    let mut chld: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut chld);
    libc::sigaddset(&mut chld, libc::SIGCHLD);
    libc::sigprocmask(libc::SIG_BLOCK, &chld, std::ptr::null_mut());
    report(status, MSG_HELD, 0, 0);
    // Nothing else is reported (psy reads the joined test's exit from whoever forked it), and
    // nothing inherited stays open.
    libc::syscall(libc::SYS_close_range, 0, libc::c_uint::MAX, 0);
    loop {
        let mut wstatus = 0;
        while libc::waitpid(-1, &mut wstatus, libc::WNOHANG | libc::__WALL) > 0 {}
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::sigwaitinfo(&chld, &mut info);
    }
}

pub(crate) unsafe fn reap_until_test_exits(status: RawFd, test_pid: libc::pid_t) -> ! {
    loop {
        let mut wstatus = 0;
        let pid = libc::waitpid(-1, &mut wstatus, 0);
        if pid == test_pid {
            report(status, MSG_TEST_EXITED, wstatus, 0);
            report_io(status);
            // Exiting kills every other process left in the namespace (daemons included).
            let code = if libc::WIFEXITED(wstatus) {
                libc::WEXITSTATUS(wstatus)
            } else {
                128 + libc::WTERMSIG(wstatus)
            };
            libc::_exit(code);
        }
        // A failed wait is an interruption while the test lives (errno is not ours to read,
        // see `make_mountpoint`); once it is gone without being reaped, give up.
        if pid < 0 && libc::kill(test_pid, 0) != 0 {
            libc::_exit(125);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn io_fields_are_found_without_allocating() {
        let io = b"rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 31457280\ncancelled_write_bytes: 0\n";
        assert_eq!(field(io, b"\nread_bytes: "), Some(4096));
        assert_eq!(field(io, b"\nwrite_bytes: "), Some(31_457_280));
        assert_eq!(field(io, b"\nmissing: "), None);
    }
}
