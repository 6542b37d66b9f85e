//! Interface settings made in-process with the classic socket ioctls instead of an `ip`
//! subprocess (6-13 ms each here): bringing a link up, putting a port on a bridge, and giving
//! `eth0` inside a namespace its address, from a short-lived thread that joined it. Creating
//! links (veth pairs, bridges) needs netlink and stays with `ip`.
//!
//! Hand-written rather than a netlink crate: these four requests are a few lines each, and a
//! netlink dependency would weigh more than everything here.

use super::NetError;
use std::ffi::CString;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `SIOCBRADDIF` (linux/sockios.h): add an interface to a bridge.
const SIOCBRADDIF: libc::c_ulong = 0x89a2;

/// A datagram socket for interface ioctls in the calling thread's network namespace.
fn control_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: socket(2) returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `ifreq` naming `dev`.
fn request(dev: &str) -> std::io::Result<libc::ifreq> {
    let name = CString::new(dev).map_err(|_| std::io::Error::other("NUL in an interface name"))?;
    let bytes = name.as_bytes_with_nul();
    // SAFETY: all-zero is a valid ifreq.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    if bytes.len() > ifr.ifr_name.len() {
        return Err(std::io::Error::other(format!(
            "interface name {dev:?} is too long"
        )));
    }
    for (dst, src) in ifr.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Ok(ifr)
}

fn ioctl(sock: &OwnedFd, op: libc::c_ulong, ifr: &mut libc::ifreq) -> std::io::Result<()> {
    // SAFETY: `ifr` is a valid ifreq for these requests and outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), op as _, ifr as *mut libc::ifreq) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sets `IFF_UP` on `dev` (in the calling thread's namespace).
fn up(sock: &OwnedFd, dev: &str) -> std::io::Result<()> {
    let mut ifr = request(dev)?;
    ioctl(sock, libc::SIOCGIFFLAGS, &mut ifr)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    ioctl(sock, libc::SIOCSIFFLAGS, &mut ifr)
}

/// An IPv4 `sockaddr` as `ifreq` carries it.
fn sockaddr(address: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(address).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; the kernel reads it as sockaddr_in.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn device_error(what: String) -> impl FnOnce(std::io::Error) -> NetError {
    move |source| NetError::Device { what, source }
}

/// Brings `dev` up in psy's own namespace.
pub(super) fn link_up(dev: &str) -> Result<(), NetError> {
    control_socket()
        .and_then(|sock| up(&sock, dev))
        .map_err(device_error(format!("bring {dev} up")))
}

/// Puts `dev` on `bridge` and brings it up (both in psy's own namespace).
pub(super) fn enslave_up(bridge: &str, dev: &str) -> Result<(), NetError> {
    let enslave = || -> std::io::Result<()> {
        let sock = control_socket()?;
        let name = CString::new(dev).map_err(|_| std::io::Error::other("NUL in a name"))?;
        // SAFETY: a NUL-terminated name.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut ifr = request(bridge)?;
        ifr.ifr_ifru.ifru_ifindex = index as libc::c_int;
        ioctl(&sock, SIOCBRADDIF, &mut ifr)?;
        up(&sock, dev)
    };
    enslave().map_err(device_error(format!("put {dev} on {bridge}")))
}

/// Inside the namespace `netns`: `eth0` gets `address/prefix` and comes up, and so does `lo`.
/// Runs on a thread of its own, which ends in that namespace (a thread that joined another
/// network namespace must not go on serving psy).
pub(super) fn address_inside(
    netns: BorrowedFd<'_>,
    address: Ipv4Addr,
    prefix: u8,
) -> Result<(), NetError> {
    let what = format!("address eth0 as {address}/{prefix}");
    let fd = netns.as_raw_fd();
    std::thread::scope(|scope| {
        scope
            .spawn(move || -> std::io::Result<()> {
                // SAFETY: setns of the network namespace changes only this thread, which
                // ends right after.
                if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let sock = control_socket()?;
                let mut ifr = request("eth0")?;
                ifr.ifr_ifru.ifru_addr = sockaddr(address);
                ioctl(&sock, libc::SIOCSIFADDR, &mut ifr)?;
                let mask =
                    Ipv4Addr::from(u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0));
                ifr.ifr_ifru.ifru_netmask = sockaddr(mask);
                ioctl(&sock, libc::SIOCSIFNETMASK, &mut ifr)?;
                up(&sock, "eth0")?;
                up(&sock, "lo")
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the addressing thread panicked")))
    })
    .map_err(device_error(what))
}
