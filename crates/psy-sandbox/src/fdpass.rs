//! Messages with file descriptors over a `SOCK_SEQPACKET` unix socket (`SCM_RIGHTS`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// At most this many descriptors travel with one message.
pub(crate) const MAX_FDS: usize = 8;

/// A connected pair of `SOCK_SEQPACKET` sockets (message boundaries kept), close-on-exec.
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-element array.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair returned two new fds we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends `data` and `fds` as one message.
pub(crate) fn send(sock: &OwnedFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    assert!(fds.len() <= MAX_FDS);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut control = [0u64; 16]; // 128 bytes, aligned: room for MAX_FDS descriptors
                                  // SAFETY: msghdr and the control buffer are built per cmsg(3); the buffer outlives the call.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let fd_bytes = std::mem::size_of_val(fds) as u32;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(fd_bytes) as usize;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes) as usize;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(cmsg).cast::<RawFd>(),
                fds.len(),
            );
        }
        loop {
            if libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) >= 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

/// Messages up to this size travel inline; a larger one (a long argv or environment) travels in
/// a memfd sent with it: a datagram socket's send buffer caps a message at about 200 KiB.
const INLINE_MAX: usize = 64 << 10;
/// The body of a message whose real body is in the last descriptor.
const SPILLED: &[u8] = b"\0psy-memfd";

/// Like [`send`] for a body of any size.
pub(crate) fn send_any(sock: &OwnedFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    if data.len() <= INLINE_MAX {
        return send(sock, data, fds);
    }
    // SAFETY: plain syscall with a C string; a non-negative result is a new fd we own.
    let memfd = unsafe { libc::memfd_create(c"psy-launch".as_ptr(), libc::MFD_CLOEXEC) };
    if memfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    let memfd = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(memfd) });
    std::io::Write::write_all(&mut &memfd, data)?;
    let mut all = fds.to_vec();
    all.push(memfd.as_raw_fd());
    send(sock, SPILLED, &all)
}

/// Like [`recv`] for a message sent with [`send_any`]: the body is left in `buf` (grown as
/// needed) and its length returned.
pub(crate) fn recv_any(sock: &OwnedFd, buf: &mut Vec<u8>) -> io::Result<(usize, Vec<OwnedFd>)> {
    let (n, mut fds) = recv(sock, buf)?;
    if &buf[..n] != SPILLED {
        return Ok((n, fds));
    }
    let memfd = fds.pop().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "spilled message without its memfd",
        )
    })?;
    let file = std::fs::File::from(memfd);
    let len = file.metadata()?.len() as usize;
    buf.resize(buf.len().max(len), 0);
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf[..len], 0)?;
    Ok((len, fds))
}

/// Receives one message into `buf`; returns its length (0: the peer is gone) and its fds.
pub(crate) fn recv(sock: &OwnedFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: as in `send`; received descriptors are taken into OwnedFds exactly once.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        let n = loop {
            let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n >= 0 {
                break n as usize;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        };
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let count =
                    ((*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if msg.msg_flags & libc::MSG_TRUNC != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message larger than the receive buffer",
            ));
        }
        Ok((n, fds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn descriptors_travel_with_the_message() {
        let (a, b) = seqpacket_pair().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = std::fs::File::create(&path).unwrap();
        send(&a, b"hello", &[file.as_raw_fd()]).unwrap();
        let mut buf = [0u8; 64];
        let (n, mut fds) = recv(&b, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 1);
        let mut received = std::fs::File::from(fds.remove(0));
        received.write_all(b"via the copy").unwrap();
        file.flush().unwrap();
        let mut text = String::new();
        std::fs::File::open(&path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "via the copy");
        drop(a);
        assert_eq!(recv(&b, &mut buf).unwrap().0, 0, "peer gone");
    }

    #[test]
    fn large_messages_travel_in_a_memfd() {
        let (a, b) = seqpacket_pair().unwrap();
        let big = vec![7u8; 1 << 20];
        let (r, w) = (a.try_clone().unwrap(), b.try_clone().unwrap());
        let sender = std::thread::spawn(move || send_any(&r, &big, &[w.as_raw_fd()]).unwrap());
        let mut buf = vec![0u8; 4096];
        let (n, fds) = recv_any(&b, &mut buf).unwrap();
        sender.join().unwrap();
        assert_eq!(n, 1 << 20);
        assert!(buf[..n].iter().all(|&x| x == 7));
        assert_eq!(fds.len(), 1, "the memfd is not handed on");
    }
}
