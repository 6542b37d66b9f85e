//! The driver's fault socket and what each fault does.
//!
//! The socket lies in the driver's scratch directory, the only container that sees it; a
//! connection is served only when its peer process is in the driver's PID namespace (checked
//! with `SO_PEERCRED`), so nothing but the driver of this running test can inject faults. One
//! connection carries one request (a JSON line, `psy_model::FaultRequest`) and gets one answer
//! (`FaultReply`) when the fault is in effect or has failed.

use super::nodes::Shared;
use super::run::{Live, DEFAULT_GRACE};
use super::timeline::Timeline;
use psy_model::{FaultReply, FaultRequest};
use psy_sandbox::timens::ClockOffset;
use psy_sandbox::Container;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The socket's file name in the driver's scratch directory.
const SOCKET_NAME: &str = ".psy-fault.sock";

/// How long the driver may take to send its request once connected.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The name of the file `disk-full` creates in a node's volume.
const FILL_NAME: &str = ".psy-disk-full";

/// The listening socket of one scenario.
#[derive(Debug)]
pub(super) struct FaultSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl FaultSocket {
    /// Listens in `scratch` (the driver's scratch directory, shown at the same path inside).
    pub(super) fn bind(scratch: &Path) -> Result<FaultSocket, String> {
        let path = scratch.join(SOCKET_NAME);
        let _ = std::fs::remove_file(&path);
        // A socket's path must fit `sun_path` (108 bytes); a deep project goes through the
        // directory's descriptor instead.
        let dir =
            std::fs::File::open(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let short = PathBuf::from(format!("/proc/self/fd/{}/{SOCKET_NAME}", dir.as_raw_fd()));
        let listener = UnixListener::bind(&short)
            .map_err(|e| format!("listening on {}: {e}", path.display()))?;
        drop(dir);
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // The driver runs as root of its own user namespace, which is not host root: the
        // socket must be writable by others (nothing else sees this directory).
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(FaultSocket { listener, path })
    }

    /// Where the driver finds it (`PSY_FAULT_SOCKET`).
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one pending connection, if any, and answers its request with `apply` when it
    /// comes from `driver`'s PID namespace (refuses it otherwise).
    pub(super) fn serve_one(
        &self,
        driver: &Container,
        apply: impl FnOnce(&FaultRequest) -> Result<String, String>,
    ) {
        let Ok((stream, _)) = self.listener.accept() else {
            return;
        };
        let reply = match read_request(&stream, driver) {
            Ok(request) => match apply(&request) {
                Ok(message) => FaultReply { ok: true, message },
                Err(message) => FaultReply { ok: false, message },
            },
            Err(message) => FaultReply { ok: false, message },
        };
        let mut line = serde_json::to_vec(&reply).expect("a reply serialises");
        line.push(b'\n');
        if let Err(e) = (&stream).write_all(&line) {
            tracing::debug!("answering a fault request: {e}");
        }
    }
}

impl AsRawFd for FaultSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }
}

/// The request on `stream`, if its sender is inside the driver's container.
fn read_request(stream: &UnixStream, driver: &Container) -> Result<FaultRequest, String> {
    stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(REQUEST_TIMEOUT)))
        .map_err(|e| format!("fault socket: {e}"))?;
    let peer = peer_pid(stream)?;
    let ns = |pid: u32| {
        std::fs::metadata(format!("/proc/{pid}/ns/pid"))
            .map(|m| m.ino())
            .map_err(|e| format!("fault socket: the namespace of pid {pid}: {e}"))
    };
    if ns(peer)? != ns(driver.pid())? {
        return Err("refused: only the driver of this test may inject faults".into());
    }
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| format!("reading the fault request: {e}"))?;
    serde_json::from_str(&line).map_err(|e| format!("a fault request psy cannot read: {e}"))
}

/// The pid of the process at the other end of `stream`.
fn peer_pid(stream: &UnixStream) -> Result<u32, String> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r < 0 || cred.pid <= 0 {
        return Err(format!(
            "fault socket: who is asking: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(cred.pid as u32)
}

impl Live {
    /// Applies one fault; `Ok` says what was done once it is in effect.
    pub(super) fn apply(
        &mut self,
        shared: &Shared<'_>,
        request: &FaultRequest,
        timeline: &mut Timeline,
    ) -> Result<String, String> {
        let names: Vec<&str> = self.nodes.iter().map(|n| n.spec.name.as_str()).collect();
        let index = |name: &str| {
            names.iter().position(|n| *n == name).ok_or_else(|| {
                format!(
                    "no node named {name:?} in this test (its nodes: {})",
                    names.join(" ")
                )
            })
        };
        for name in request.nodes() {
            index(name)?;
        }
        match request {
            FaultRequest::Kill { node } => {
                let i = index(node)?;
                let container = self.running(i)?;
                container.kill();
                let status = self.nodes[i].finish(container);
                Ok(format!("killed {node} ({status})"))
            }
            FaultRequest::Stop { node, grace } => {
                let i = index(node)?;
                let status = self.stop_node(i, grace.unwrap_or(DEFAULT_GRACE))?;
                Ok(format!("stopped {node} ({status})"))
            }
            FaultRequest::Start { node } => {
                let i = index(node)?;
                if self.nodes[i].container.is_some() && self.exited(i).is_none() {
                    return Err(format!("{node} is running already"));
                }
                self.start_nodes(shared, &[i], timeline)?;
                Ok(format!("started {node}, ready"))
            }
            FaultRequest::Restart { node, grace } => {
                let i = index(node)?;
                let status = self.restart(shared, i, *grace, timeline)?;
                Ok(format!("restarted {node} (stopped: {status}), ready"))
            }
            FaultRequest::Pause { node } | FaultRequest::Resume { node } => {
                let i = index(node)?;
                let frozen = matches!(request, FaultRequest::Pause { .. });
                let container = self.nodes[i]
                    .container
                    .as_ref()
                    .ok_or_else(|| format!("{node} is not running"))?;
                let done = if frozen { "paused" } else { "resumed" };
                match container.freeze(frozen) {
                    Ok(()) => Ok(format!("{done} {node}")),
                    // cgroup v1 groups have no freezer (it would cost every container a
                    // hierarchy): stop and continue every process of the node instead.
                    Err(psy_sandbox::cgroup::CgroupError::MissingController { .. }) => {
                        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
                        let n = container
                            .signal(signal)
                            .map_err(|e| format!("{done} {node}: {e}"))?;
                        Ok(format!("{done} {node} ({n} processes signalled)"))
                    }
                    Err(e) => Err(format!("freezing {node}: {e}")),
                }
            }
            FaultRequest::Partition { a, b } => {
                if a.is_empty() || b.is_empty() {
                    return Err("a partition needs a node on each side".into());
                }
                if let Some(both) = a.iter().find(|n| b.contains(n)) {
                    return Err(format!("{both} is on both sides of the partition"));
                }
                let member = |names: &[String]| {
                    names
                        .iter()
                        .map(|n| index(n).map(|i| i as u32 + 1))
                        .collect::<Result<Vec<_>, _>>()
                };
                self.net.partition(&member(a)?, &member(b)?)?;
                Ok(format!("partitioned {} from {}", a.join(","), b.join(",")))
            }
            FaultRequest::Heal => {
                self.net.heal()?;
                Ok("healed every partition".into())
            }
            FaultRequest::Link { node, shape, clear } => {
                let i = index(node)?;
                if *clear || shape.is_empty() {
                    self.net.link(i as u32 + 1, None)?;
                    Ok(format!("cleared the link of {node}"))
                } else {
                    self.net.link(i as u32 + 1, Some(shape))?;
                    Ok(format!("shaped the link of {node}: {shape:?}"))
                }
            }
            FaultRequest::DiskFull { node, path } | FaultRequest::DiskFree { node, path } => {
                let i = index(node)?;
                let full = matches!(request, FaultRequest::DiskFull { .. });
                self.disk(i, path.as_deref(), full)
            }
            FaultRequest::Clock {
                node,
                offset_millis,
            } => {
                let i = index(node)?;
                // A time namespace's offsets are fixed before its first process enters it: the
                // node starts again in a new one (`psy_sandbox::timens`).
                psy_sandbox::timens::supported()?;
                ClockOffset::from_millis(*offset_millis).check()?;
                let before =
                    std::mem::replace(&mut self.nodes[i].clock_offset_millis, *offset_millis);
                let status = self.restart(shared, i, None, timeline).inspect_err(|_| {
                    self.nodes[i].clock_offset_millis = before;
                })?;
                Ok(match offset_millis {
                    0 => format!(
                        "restarted {node} (stopped: {status}) with the host's clocks, ready"
                    ),
                    _ => format!(
                        "restarted {node} (stopped: {status}) with its clocks at {}, ready: \
                         CLOCK_MONOTONIC and CLOCK_BOOTTIME moved, CLOCK_REALTIME is the host's",
                        describe_offset(*offset_millis)
                    ),
                })
            }
        }
    }

    /// Stops node `i` if it runs (SIGTERM, SIGKILL after `grace`), starts it again and waits
    /// until it is ready; how it stopped.
    fn restart(
        &mut self,
        shared: &Shared<'_>,
        i: usize,
        grace: Option<Duration>,
        timeline: &mut Timeline,
    ) -> Result<String, String> {
        let status = match self.nodes[i].container.is_some() {
            true => self.stop_node(i, grace.unwrap_or(DEFAULT_GRACE))?,
            false => "it was not running".into(),
        };
        self.start_nodes(shared, &[i], timeline)?;
        Ok(status)
    }

    /// Node `i`'s container, taken out of it; an error when it is not running.
    fn running(&mut self, i: usize) -> Result<Container, String> {
        if self.exited(i).is_some() {
            return Err(format!("{} has exited already", self.nodes[i].spec.name));
        }
        self.nodes[i]
            .container
            .take()
            .ok_or_else(|| format!("{} is not running", self.nodes[i].spec.name))
    }

    /// SIGTERM to node `i`'s processes, SIGKILL after `grace`; how it ended.
    fn stop_node(&mut self, i: usize, grace: Duration) -> Result<String, String> {
        let mut container = self.running(i)?;
        if let Err(e) = container.signal(libc::SIGTERM) {
            tracing::warn!("SIGTERM to node {}: {e}", self.nodes[i].spec.name);
        }
        if !container.wait_timeout(Some(grace)).unwrap_or(false) {
            container.kill();
        }
        Ok(self.nodes[i].finish(container))
    }

    /// Fills (or frees) the free space of node `i`'s volume at `path` (its only one if `None`).
    fn disk(&mut self, i: usize, path: Option<&Path>, full: bool) -> Result<String, String> {
        let node = &self.nodes[i];
        let name = &node.spec.name;
        let volume = match path {
            Some(p) => node
                .spec
                .volumes
                .iter()
                .find(|v| p.starts_with(&v.path))
                .ok_or_else(|| format!("{} is not in a volume of {name}", p.display()))?,
            None => match node.spec.volumes.as_slice() {
                [only] => only,
                [] => return Err(format!("{name} has no volume to fill")),
                _ => return Err(format!("{name} has several volumes: name the path to fill")),
            },
        };
        let container = node
            .container
            .as_ref()
            .ok_or_else(|| format!("{name} is not running (its volume is not mounted)"))?;
        let relative = volume.path.strip_prefix("/").unwrap_or(&volume.path);
        let file = Path::new(&format!("/proc/{}/root", container.pid()))
            .join(relative)
            .join(FILL_NAME);
        if !full {
            return match std::fs::remove_file(&file) {
                Ok(()) => Ok(format!("freed the volume {} of {name}", volume.name)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(format!(
                    "the volume {} of {name} was not filled",
                    volume.name
                )),
                Err(e) => Err(format!("freeing {}: {e}", file.display())),
            };
        }
        let taken = fill(&file).map_err(|e| format!("filling {}: {e}", file.display()))?;
        Ok(format!(
            "filled the volume {} of {name} ({taken} bytes taken)",
            volume.name
        ))
    }
}

/// `+30s`, `-1.5s`, `the host's` (0): a node's clock offset for a person.
pub(super) fn describe_offset(millis: i64) -> String {
    if millis == 0 {
        return "the host's".into();
    }
    let sign = if millis < 0 { '-' } else { '+' };
    let magnitude = Duration::from_millis(millis.unsigned_abs());
    format!("{sign}{magnitude:?}")
}

/// Allocates every free block of the filesystem holding `file` to it; returns the bytes taken.
fn fill(file: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(file)?;
    let mut taken = 0u64;
    let mut chunk: u64 = 1 << 30;
    while chunk >= 4096 {
        // SAFETY: fallocate on our own descriptor; extends the file by `chunk` bytes.
        let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, taken as i64, chunk as i64) };
        if r == 0 {
            taken += chunk;
        } else {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOSPC) {
                return Err(e);
            }
            chunk /= 2;
        }
    }
    Ok(taken)
}
