//! Readiness probes: `ready = { tcp = PORT }` connects to the node's address from inside the
//! scenario's network (a thread that joined the driver's namespace: the host has no address on
//! it), `ready = { command = [...] }` runs the command in a short-lived container sharing the
//! node's network namespace, so `localhost` is the node.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// How long one TCP connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);

/// A thread inside the scenario's network, answering "does this port accept?".
#[derive(Debug)]
pub(super) struct TcpProber {
    asks: std::sync::mpsc::Sender<(SocketAddr, std::sync::mpsc::Sender<bool>)>,
}

impl TcpProber {
    /// Starts the thread in `netns` (a descriptor of the driver's namespace, which it owns).
    pub(super) fn start(netns: OwnedFd) -> Result<TcpProber, String> {
        let (asks, questions) =
            std::sync::mpsc::channel::<(SocketAddr, std::sync::mpsc::Sender<bool>)>();
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("psy-scenario-probe".into())
            .spawn(move || {
                // SAFETY: setns of the network namespace changes only this thread, which
                // serves probes in it until the scenario drops its sender, then exits.
                let entered = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
                let _ = entered_tx.send(if entered < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                });
                if entered < 0 {
                    return;
                }
                for (address, answer) in questions {
                    let up = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT).is_ok();
                    let _ = answer.send(up);
                }
            })
            .map_err(|e| format!("starting the readiness prober: {e}"))?;
        match entered_rx.recv() {
            Ok(Ok(())) => Ok(TcpProber { asks }),
            Ok(Err(e)) => Err(format!(
                "the readiness prober cannot join the scenario's network: {e}"
            )),
            Err(_) => Err("the readiness prober died".into()),
        }
    }

    /// Whether `address:port` accepts a TCP connection now.
    pub(super) fn accepts(&self, address: Ipv4Addr, port: u16) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        if self
            .asks
            .send((SocketAddr::from((address, port)), tx))
            .is_err()
        {
            return false;
        }
        rx.recv().unwrap_or(false)
    }
}
