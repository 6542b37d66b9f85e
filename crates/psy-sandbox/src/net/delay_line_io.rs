//! The two ends of a node's delay line: its tap and a packet socket on its veth's host end.
//!
//! Both are made on the node's first shape and kept until its port goes, because closing
//! either waits for an RCU grace period (10-30 ms here; a packet socket's close calls
//! `synchronize_net`). Between shapes the socket drops everything by a classic BPF filter
//! (`ret #0`), so frames the node sends over the bridge do not pile up in it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::NetError;

/// From `<linux/if_packet.h>` (not in the libc crate).
const PACKET_VNET_HDR: libc::c_int = 15;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// A node's tap (not persistent: it goes with its fd) and packet socket.
#[derive(Debug)]
pub(in crate::net) struct LineIo {
    pub(super) tap: OwnedFd,
    pub(super) node: OwnedFd,
    veth: String,
}

impl LineIo {
    /// Creates tap `tap` and a closed packet socket on `veth`.
    pub(in crate::net) fn open(tap: &str, veth: &str) -> Result<LineIo, NetError> {
        let io = LineIo {
            tap: open_tap(tap)?,
            node: packet_socket(veth)?,
            veth: veth.to_owned(),
        };
        Ok(io)
    }

    /// Lets frames into the packet socket (`true`) or drops them all (`false`).
    pub(super) fn pass(&self, open: bool) -> Result<(), NetError> {
        set_drop_filter(&self.node, !open).map_err(|source| NetError::Device {
            what: format!("switch the packet filter on {}", self.veth),
            source,
        })
    }
}

/// A new, not yet persistent tap `name` with virtio headers, non-blocking.
fn open_tap(name: &str) -> Result<OwnedFd, NetError> {
    let err = |source| NetError::Device {
        what: format!("create tap {name} through /dev/net/tun"),
        source,
    };
    // SAFETY: a plain open of a device node; the fd is owned right below.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all zeroes is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as i16;
    // SAFETY: TUNSETIFF reads and writes one ifreq, which lives across the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    Ok(fd)
}

/// A non-blocking raw socket on `dev` for every protocol, with virtio headers, deaf to what
/// it sends.
fn packet_socket(dev: &str) -> Result<OwnedFd, NetError> {
    let err = |source| NetError::Device {
        what: format!("open a packet socket on {dev}"),
        source,
    };
    let cname = CString::new(dev).map_err(|_| err(io::ErrorKind::InvalidInput.into()))?;
    // SAFETY: reads a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        return Err(err(io::Error::last_os_error()));
    }
    // Protocol 0 until bound, so no other interface's frames are queued in between.
    // SAFETY: plain socket creation; the fd is owned right below.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Closed from the start: nothing queues before the delay line runs.
    set_drop_filter(&fd, true).map_err(err)?;
    for option in [PACKET_VNET_HDR, PACKET_IGNORE_OUTGOING] {
        set_option(&fd, libc::SOL_PACKET, option, &1).map_err(err)?;
    }
    // SAFETY: sockaddr_ll is plain data; all zeroes is valid.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: `addr` is a valid sockaddr_ll of the given size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    Ok(fd)
}

/// Attaches a filter that drops every frame (`drop`), or detaches it.
fn set_drop_filter(fd: &OwnedFd, drop: bool) -> io::Result<()> {
    if !drop {
        return set_option(fd, libc::SOL_SOCKET, libc::SO_DETACH_FILTER, &0);
    }
    let mut ret0 = [libc::sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    }];
    let prog = libc::sock_fprog {
        len: 1,
        filter: ret0.as_mut_ptr(),
    };
    // The kernel copies the program; `ret0` outlives the call.
    set_option(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
}

/// `setsockopt(fd, level, name, value)`.
fn set_option<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live, initialised T of the given size for the whole call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
