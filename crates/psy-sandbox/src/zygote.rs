//! The zygote: a small helper process, forked when psy starts, that clones every container's
//! init on psy's behalf.
//!
//! Cloning from psy itself copies psy's page tables and then makes both sides take
//! copy-on-write faults on every page they touch; with a multi-threaded psy each fault also
//! flushes TLBs on other cores. On a 2,000-test run that was about 40% of all CPU time. The
//! zygote is forked before psy grows, stays single-threaded and small, so a clone from it is
//! cheap. `CLONE_PARENT` makes each init psy's child, so psy waits for it, gets its rusage and
//! its `PR_SET_PDEATHSIG` still follows psy's main thread.

use crate::confine::Confinement;
use crate::error::SandboxError;
use crate::fdpass;
use crate::launch::{self, Launch};
use crate::rootfs::HostView;
use crate::seccomp::Allowances;
use crate::spec::ContainerSpec;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock};

static ZYGOTE: OnceLock<Zygote> = OnceLock::new();

/// psy's end of the zygote.
#[derive(Debug)]
pub(crate) struct Zygote {
    sock: Mutex<OwnedFd>,
}

/// Everything of a [`Launch`] but its file descriptors, which travel beside it.
#[derive(Debug, Serialize, Deserialize)]
struct WireLaunch {
    argv: Vec<String>,
    exe: PathBuf,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    hostname: String,
    tmp_bytes: u64,
    scratch_dir: PathBuf,
    project_dir: PathBuf,
    cgroup_procs: Vec<PathBuf>,
    unprivileged: Option<(u32, u32)>,
    has_netns: bool,
    scratch_bytes: Option<u64>,
    scratch_device: Option<PathBuf>,
    sync_mounts: bool,
    volume_devices: Vec<(PathBuf, PathBuf)>,
    confinement: Confinement,
    view: Option<HostView>,
    masks: Vec<PathBuf>,
    /// The host id the slot's root maps to; its user namespace travels as a descriptor.
    userns_host_root: Option<u32>,
    allow: Allowances,
    writable: Vec<PathBuf>,
    #[serde(default)]
    readonly: Vec<PathBuf>,
    #[serde(default)]
    image: Option<crate::spec::ImageRoot>,
    #[serde(default)]
    hosts_file: Option<PathBuf>,
    #[serde(default)]
    hold: bool,
}

#[derive(Debug, Serialize, Deserialize)]
enum WireReply {
    Started { pid: i32 },
    Failed { message: String },
}

/// Forks the zygote. Call first thing in `main`, while the process is single-threaded and small;
/// without it containers are cloned from psy directly (slower, same behaviour).
pub fn start() -> io::Result<()> {
    if ZYGOTE.get().is_some() {
        return Ok(());
    }
    let (ours, theirs) = fdpass::seqpacket_pair()?;
    // SAFETY: getpid has no preconditions.
    let psy = unsafe { libc::getpid() };
    // SAFETY: called while single-threaded (documented precondition); the child never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        drop(ours);
        serve(theirs, psy);
    }
    drop(theirs);
    let _ = ZYGOTE.set(Zygote {
        sock: Mutex::new(ours),
    });
    Ok(())
}

pub(crate) fn global() -> Option<&'static Zygote> {
    ZYGOTE.get()
}

impl Zygote {
    /// Exclusive use of the zygote for a batch of launches.
    pub(crate) fn session(&self) -> Session<'_> {
        Session {
            sock: self.sock.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

/// A batch of launches: `send` each, then `receive` the results in the same order.
#[derive(Debug)]
pub(crate) struct Session<'a> {
    sock: MutexGuard<'a, OwnedFd>,
}

fn zygote_err(source: io::Error) -> SandboxError {
    SandboxError::Os {
        what: "the zygote (container launcher)",
        source,
    }
}

impl Session<'_> {
    /// Asks the zygote to start `launch`'s init; psy's copies of its descriptors close here.
    pub(crate) fn send(&mut self, launch: &Launch) -> Result<(), SandboxError> {
        let wire = WireLaunch {
            argv: launch.spec.argv.clone(),
            exe: launch.exe.clone(),
            env: launch.spec.env.clone(),
            cwd: launch.spec.cwd.clone(),
            hostname: launch.spec.hostname.clone(),
            tmp_bytes: launch.spec.tmp_bytes,
            scratch_dir: launch.spec.scratch_dir.clone(),
            project_dir: launch.spec.project_dir.clone(),
            cgroup_procs: launch.cgroup_procs.clone(),
            unprivileged: launch.unprivileged,
            has_netns: launch.netns.is_some(),
            scratch_bytes: launch.spec.scratch_bytes,
            scratch_device: launch.scratch_device.clone(),
            sync_mounts: launch.sync_mounts,
            volume_devices: launch.volume_devices.clone(),
            confinement: launch.confinement,
            view: launch.view.clone(),
            masks: launch.masks.clone(),
            userns_host_root: launch.userns.as_ref().map(|(_, id)| *id),
            allow: launch.allow,
            writable: launch.spec.writable.clone(),
            readonly: launch.spec.readonly.clone(),
            image: launch.spec.image.clone(),
            hosts_file: launch.spec.hosts_file.clone(),
            hold: launch.spec.hold,
        };
        let body = serde_json::to_vec(&wire).expect("a launch serialises");
        let mut fds = vec![
            launch.spec.stdout.as_raw_fd(),
            launch.spec.stderr.as_raw_fd(),
            launch.status_tx.as_raw_fd(),
        ];
        fds.extend(launch.netns.as_ref().map(|fd| fd.as_raw_fd()));
        fds.extend(launch.userns.as_ref().map(|(fd, _)| fd.as_raw_fd()));
        fdpass::send_any(&self.sock, &body, &fds).map_err(zygote_err)
    }

    /// The next launch's init: its pid and pidfd.
    pub(crate) fn receive(&mut self) -> Result<(libc::pid_t, OwnedFd), SandboxError> {
        let mut buf = [0u8; 4096];
        let (n, mut received) = fdpass::recv(&self.sock, &mut buf).map_err(zygote_err)?;
        if n == 0 {
            return Err(zygote_err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the zygote exited",
            )));
        }
        let reply: WireReply = serde_json::from_slice(&buf[..n])
            .map_err(|e| zygote_err(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        match (reply, received.pop()) {
            (WireReply::Started { pid }, Some(pidfd)) => Ok((pid, pidfd)),
            (WireReply::Failed { message }, _) => Err(SandboxError::Zygote { message }),
            (WireReply::Started { .. }, None) => Err(zygote_err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no pidfd with the reply",
            ))),
        }
    }
}

/// The zygote's loop: one launch per message, until psy goes away.
fn serve(sock: OwnedFd, psy: libc::pid_t) -> ! {
    // SAFETY: plain process-attribute syscalls on ourselves.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != psy {
            libc::_exit(0);
        }
        // Ctrl-C at the terminal goes to psy alone; psy stops the containers itself.
        libc::setpgid(0, 0);
    }
    launch::set_psy_pid(psy);
    if let Err(e) = crate::seccomp::filter_launcher() {
        // Each test then loads the filter itself (slower, same protection).
        tracing::debug!("the zygote runs without the seccomp filter: {e}");
    }
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let (n, fds) = match fdpass::recv_any(&sock, &mut buf) {
            Ok((0, _)) | Err(_) => break,
            Ok(msg) => msg,
        };
        let (reply, pidfd) = match handle(&buf[..n], fds) {
            Ok((pid, pidfd)) => (WireReply::Started { pid }, Some(pidfd)),
            Err(e) => (
                WireReply::Failed {
                    message: e.to_string(),
                },
                None,
            ),
        };
        let body = serde_json::to_vec(&reply).expect("a reply serialises");
        let fds: Vec<_> = pidfd.iter().map(|fd| fd.as_raw_fd()).collect();
        if fdpass::send(&sock, &body, &fds).is_err() {
            break;
        }
    }
    // SAFETY: leaving without running psy's exit handlers (they belong to psy).
    unsafe { libc::_exit(0) }
}

fn handle(body: &[u8], fds: Vec<OwnedFd>) -> Result<(libc::pid_t, OwnedFd), SandboxError> {
    let bad = |what: &str| SandboxError::Zygote {
        message: format!("malformed launch request: {what}"),
    };
    let wire: WireLaunch = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
    let mut fds = fds.into_iter();
    let mut next = |what| fds.next().ok_or_else(|| bad(what));
    let (stdout, stderr, status_tx) = (next("stdout")?, next("stderr")?, next("status pipe")?);
    let netns = if wire.has_netns {
        Some(next("network namespace")?)
    } else {
        None
    };
    let userns = match wire.userns_host_root {
        Some(id) => Some((next("user namespace")?, id)),
        None => None,
    };
    let launch = Launch {
        exe: wire.exe,
        spec: ContainerSpec {
            argv: wire.argv,
            env: wire.env,
            cwd: wire.cwd,
            hostname: wire.hostname,
            tmp_bytes: wire.tmp_bytes,
            scratch_dir: wire.scratch_dir,
            scratch_bytes: wire.scratch_bytes,
            // Only the paths are used past this point; the devices come in `volume_devices`.
            volumes: wire.volume_devices.clone(),
            project_dir: wire.project_dir,
            stdout: File::from(stdout),
            stderr: File::from(stderr),
            cgroup_name: String::new(),
            network: None, // attached by psy before the launch
            // Carried by the launch itself (`confinement`, `masks`, `allow`).
            privileged: false,
            masked: Vec::new(),
            allow: Allowances::default(),
            writable: wire.writable,
            readonly: wire.readonly,
            image: wire.image,
            join_netns: None, // arrives as `netns`
            hosts_file: wire.hosts_file,
            hold: wire.hold,
        },
        cgroup_procs: wire.cgroup_procs,
        status_tx,
        netns,
        unprivileged: wire.unprivileged,
        scratch_device: wire.scratch_device,
        sync_mounts: wire.sync_mounts,
        volume_devices: wire.volume_devices,
        confinement: wire.confinement,
        view: wire.view,
        masks: wire.masks,
        userns,
        allow: wire.allow,
    };
    launch::start_init(launch, libc::CLONE_PARENT as u64)
}
