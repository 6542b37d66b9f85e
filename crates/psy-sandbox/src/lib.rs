//! The container every test attempt runs in.
//!
//! Each attempt gets new PID, mount, IPC, UTS and network namespaces (loopback only), the host
//! root read-only, a private size-limited `/tmp`, a writable scratch directory, and a cgroup with
//! CPU, memory and pids limits (v1 or v2, detected at runtime). Without root, a user namespace
//! gives the same isolation and cgroup limits apply only where a v2 subtree is delegated.
//!
//! The start path is a hand-made `clone3` + `execve` because start time is a product requirement
//! (a few milliseconds, close to a plain fork+exec); see `docs/architecture.md`.

pub mod cgroup;
mod cgroup_pool;
mod child;
mod confine;
mod container;
mod disk;
mod entry;
mod error;
mod fdpass;
mod guarantees;
mod init_wait;
mod launch;
pub mod net;
mod netns_pool;
mod prepared;
mod remove;
mod rootfs;
mod seccomp;
mod shared_init;
mod spec;
mod sys;
pub mod timens;
mod userns;
pub mod zygote;

pub use confine::Confinement;
pub use container::{Container, Outcome};
pub use disk::format_image;
pub use entry::JoinEntry;
pub use error::{SandboxError, SetupStep};
pub use guarantees::{Asked, Guarantee, HostGuarantees, Unenforced};
pub use prepared::DEFAULT_IMAGE_PATH;
pub use remove::remove_tree;
pub use seccomp::Allowances;
pub use spec::{ContainerSpec, ImageRoot, MAX_LAYERS, MAX_VOLUMES, MAX_WRITABLE};
pub use userns::{DEFAULT_BASE as USERNS_DEFAULT_BASE, IDS_PER_SLOT as USERNS_IDS_PER_SLOT};

use cgroup::{CgroupDriver, CgroupLimits};
use launch::Launch;
use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The prefix of every cgroup Psyduck creates (`psy-<pid>-<run>`), so `gc` touches only ours.
pub const CGROUP_PREFIX: &str = "psy";

/// Size of the scratch filesystem given to a test with IO limits on cgroup v1 that did not ask
/// for a `disk` size (sparse: only what the test writes takes space).
const DEFAULT_THROTTLED_SCRATCH_BYTES: u64 = 16 << 30;

/// Network namespaces kept ready for new containers.
const NETNS_POOL_SIZE: usize = 16;

/// What psy keeps of a container it is starting.
struct Parts {
    cgroup: Option<Box<dyn cgroup::Cgroup>>,
    status_rx: OwnedFd,
    disk: Option<disk::ScratchDisk>,
    volumes: Vec<disk::Attached>,
    netns: Option<netns_pool::NetnsLease>,
    slot: Option<userns::SlotLease>,
    /// How a forked process joins it (held containers).
    entry: Option<JoinEntry>,
}

/// Starts containers for one run of psy.
#[derive(Debug)]
pub struct Sandbox {
    cgroups: Option<Arc<dyn CgroupDriver>>,
    /// Cgroups made ahead and removed in the background.
    cgroup_pool: Option<cgroup_pool::CgroupPool>,
    /// `psy-<pid>-<run>`: the run's cgroup, parent of every attempt's.
    run_group: String,
    unprivileged: Option<(u32, u32)>,
    warnings: Vec<String>,
    /// Ready network namespaces, and the run's bridge for tests with a network (root only: a
    /// user namespace cannot join the host's).
    netns_pool: Option<netns_pool::NetnsPool>,
    /// `(argv[0], PATH, cwd)` -> the program, as resolved once (see `resolve`).
    resolved: Mutex<HashMap<(String, String, PathBuf, bool), PathBuf>>,
    /// The host's root can be id-mapped over a slot's user namespace (host root's files are
    /// container root's); where not, root-only files stay out of the test's reach.
    host_view_idmapped: bool,
    /// How tests that are not privileged are confined on this host.
    confinement: Mutex<Confinement>,
    /// Per-slot user namespaces (root with user namespaces).
    slots: Option<Arc<userns::UsernsSlots>>,
    /// The host's mounts and masked paths, for every hardened container's root.
    view: Option<rootfs::HostView>,
}

impl Sandbox {
    /// Detects what this host allows (root or not, cgroup v1/v2/none) and prepares the run's group.
    pub fn new(run_name: &str) -> Result<Self, SandboxError> {
        // SAFETY: trivial getters.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let mut warnings = Vec::new();
        let unprivileged = (euid != 0).then_some((euid, egid));
        let cgroups: Option<Arc<dyn CgroupDriver>> =
            match cgroup::detect(Path::new("/proc"), CGROUP_PREFIX) {
                Ok(detected) => {
                    if let Some(reason) = &detected.reason {
                        warnings.push(format!(
                            "cgroup limits (CPU, memory, pids) are NOT enforced: {reason}"
                        ));
                    }
                    detected.driver.map(Arc::from)
                }
                Err(e) => {
                    warnings.push(format!(
                        "cgroup limits (CPU, memory, pids) are NOT enforced: {e}"
                    ));
                    None
                }
            };
        if let Some(driver) = &cgroups {
            for missing in driver.missing_guarantees() {
                warnings.push(format!("not enforced on this host: {missing}"));
            }
        }
        let (confinement, slots) = match unprivileged {
            Some(_) => (Confinement::NestedUserns, None),
            None => match userns::UsernsSlots::new() {
                Ok(slots) => (Confinement::SlotUserns, Some(slots)),
                Err(e) => {
                    warnings.push(format!(
                        "user namespaces are unavailable ({e}): tests run as host root with \
                         Docker's default capabilities and seccomp filter instead"
                    ));
                    (Confinement::DockerCaps, None)
                }
            },
        };
        let cgroup2 = cgroups
            .as_ref()
            .is_some_and(|d| d.version() == cgroup::CgroupVersion::V2);
        let view = Some(rootfs::HostView::detect(cgroup2)?);
        let host_view_idmapped = slots.as_ref().is_some_and(|slots| {
            slots
                .take()
                .is_ok_and(|slot| userns::can_idmap(c"/", slot.userns()))
        });
        if slots.is_some() && !host_view_idmapped {
            warnings.push(
                "the host's root filesystem cannot be id-mapped here: tests (not host root) read \
                 host root's files as others do, so files only root may read are out of reach"
                    .to_owned(),
            );
        }
        let run_group = cgroup::run_group_name(CGROUP_PREFIX, std::process::id(), run_name);
        let netns_pool = if unprivileged.is_none() {
            // The bridge's name: unique on the machine while this psy lives; `gc` finds it by
            // the pid once psy is gone.
            netns_pool::NetnsPool::start(NETNS_POOL_SIZE, format!("{:x}", std::process::id()))
                .map_err(|e| tracing::warn!("no network namespace pool: {e}"))
                .ok()
        } else {
            None
        };
        let cgroup_pool = cgroups.as_ref().and_then(|driver| {
            cgroup_pool::CgroupPool::start(Arc::clone(driver), run_group.clone())
                .map_err(|e| tracing::warn!("no cgroup pool: {e}"))
                .ok()
        });
        Ok(Sandbox {
            cgroups,
            cgroup_pool,
            run_group,
            unprivileged,
            warnings,
            netns_pool,
            resolved: Mutex::default(),
            confinement: Mutex::new(confinement),
            host_view_idmapped,
            slots,
            view,
        })
    }

    /// How tests that are not privileged are confined on this host.
    pub fn confinement(&self) -> Confinement {
        *self.confinement.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Confines tests that are not privileged as `confinement` instead of the strongest this
    /// host allows (benchmarks compare the layers; `Privileged` turns hardening off). Refused
    /// when the host cannot provide it.
    pub fn set_confinement(&self, confinement: Confinement) -> Result<(), SandboxError> {
        let possible = match confinement {
            Confinement::Privileged => true,
            Confinement::SlotUserns => self.slots.is_some(),
            Confinement::NestedUserns => self.unprivileged.is_some(),
            Confinement::DockerCaps => self.unprivileged.is_none(),
        };
        if !possible {
            return Err(SandboxError::Unsupported {
                what: confinement.describe(),
            });
        }
        *self.confinement.lock().unwrap_or_else(|e| e.into_inner()) = confinement;
        Ok(())
    }

    /// Tells the sandbox that up to `at_once` containers with this network shaping will run at
    /// once: their namespaces are made and shaped in the background from now on.
    pub fn expect_network(&self, shaping: net::Shaping, at_once: usize) {
        if let Some(pool) = &self.netns_pool {
            pool.expect(shaping, at_once);
        }
    }

    /// A new network namespace with its loopback up, for a container to join
    /// ([`ContainerSpec::join_netns`]) and keep across restarts: a scenario node's. Root only.
    pub fn network_namespace(&self) -> Result<OwnedFd, SandboxError> {
        if self.unprivileged.is_some() {
            return Err(SandboxError::NetworkNeedsRoot);
        }
        netns_pool::fresh().map_err(|source| SandboxError::Os {
            what: "a network namespace",
            source,
        })
    }

    /// Guarantees that cannot be enforced here, to tell the user once.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The cgroup driver in use, if any.
    pub fn cgroup_driver(&self) -> Option<&dyn CgroupDriver> {
        self.cgroups.as_deref()
    }

    /// Starts one container. Must be called from a thread that outlives the container: the
    /// container's init is killed when the thread that created it exits (`PR_SET_PDEATHSIG`).
    pub fn spawn(
        &self,
        spec: ContainerSpec,
        limits: &CgroupLimits,
    ) -> Result<Container, SandboxError> {
        self.spawn_many(vec![(spec, limits.clone())])
            .pop()
            .expect("one result per spec")
    }

    /// Starts several containers, one result per spec in order. With the zygote the launches
    /// are pipelined: psy prepares the next container (cgroup, files) while the zygote clones
    /// the previous one.
    pub fn spawn_many(
        &self,
        batch: Vec<(ContainerSpec, CgroupLimits)>,
    ) -> Vec<Result<Container, SandboxError>> {
        let zygote = zygote::global();
        let mut in_progress = Vec::with_capacity(batch.len());
        let mut session = zygote.map(|z| z.session());
        for (spec, limits) in batch {
            let started = Instant::now();
            // The zygote runs under the default seccomp filter, which every container it starts
            // inherits; a test that may do more (or everything) is started from psy itself.
            let direct = spec.privileged || spec.allow != Allowances::default();
            let prepared =
                self.prepare(spec, &limits)
                    .and_then(|(launch, parts)| match &mut session {
                        Some(session) if !direct => session.send(&launch).map(|()| (None, parts)),
                        _ => launch::start_init(launch, 0).map(|started| (Some(started), parts)),
                    });
            in_progress.push((started, prepared));
        }
        in_progress
            .into_iter()
            .map(|(started, prepared)| {
                let (direct, parts) = prepared?;
                let init = match direct {
                    Some(started) => Ok(started),
                    None => session.as_mut().expect("sent through the zygote").receive(),
                };
                match init {
                    Ok((pid, pidfd)) => Ok(Container {
                        pid,
                        pidfd,
                        status_rx: parts.status_rx,
                        cgroup: parts.cgroup,
                        started,
                        exited_at: None,
                        reaped: false,
                        rusage_cpu: None,
                        remover: self.cgroup_pool.as_ref().map(|p| p.remover()),
                        _disk: parts.disk,
                        _volumes: parts.volumes,
                        _netns: parts.netns,
                        _slot: parts.slot,
                        entry: parts.entry.map(|entry| JoinEntry {
                            init_pid: pid as u32,
                            ..entry
                        }),
                    }),
                    Err(e) => {
                        if let Some(cg) = parts.cgroup {
                            let _ = cg.remove();
                        }
                        Err(e)
                    }
                }
            })
            .collect()
    }

    /// `argv[0]` resolved like `execvp` against the test's `PATH` and `cwd`, remembered for the
    /// run: a suite runs the same few programs thousands of times, and each search costs a
    /// `stat` per `PATH` entry.
    fn resolve(&self, spec: &ContainerSpec) -> Result<PathBuf, SandboxError> {
        let command = spec.argv.first().ok_or(SandboxError::NulByte {
            what: "command",
            value: String::new(),
        })?;
        let path = spec
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map_or("", |(_, v)| v.as_str());
        // Without an id-mapped host view, the test (not host root) sees host root's files as
        // "others" do: resolve as they would.
        let as_other = !spec.privileged
            && self.confinement() == Confinement::SlotUserns
            && !self.host_view_idmapped;
        if spec.image.is_some() {
            // Searched inside the image by the test itself (`Prepared::exe`).
            return Ok(PathBuf::from(command));
        }
        let key = (command.clone(), path.to_owned(), spec.cwd.clone(), as_other);
        let mut known = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(exe) = known.get(&key) {
            return Ok(exe.clone());
        }
        let exe = prepared::resolve_command(command, &spec.env, &spec.cwd, as_other)?;
        known.insert(key, exe.clone());
        Ok(exe)
    }

    /// The cgroup, status pipe, scratch disk and launch description of one container.
    fn prepare(
        &self,
        mut spec: ContainerSpec,
        limits: &CgroupLimits,
    ) -> Result<(Launch, Parts), SandboxError> {
        // Fail early and clearly (before any cgroup or clone) if the command does not exist.
        let exe = self.resolve(&spec)?;
        // cgroup v1 neither throttles nor counts background writeback (the flusher writes a
        // test's dirty pages, not the test), and on v2, where writeback is charged to the test,
        // dirty pages below the cgroup's dirty limit are written (and counted) only after the
        // test has ended, if at all. So a throttled test's writes must be issued by the test
        // itself: its scratch area becomes a filesystem of its own mounted `sync`, and the
        // throttle applies to that filesystem's loop device. See docs/architecture.md.
        let sync_io = limits.io.is_some() && self.unprivileged.is_none() && self.cgroups.is_some();
        let scratch_bytes = match spec.scratch_bytes {
            None if sync_io => Some(DEFAULT_THROTTLED_SCRATCH_BYTES),
            bytes => bytes,
        };
        let disk = match scratch_bytes {
            _ if self.unprivileged.is_some() && !spec.volumes.is_empty() => {
                return Err(SandboxError::DiskNeedsRoot)
            }
            Some(_) if self.unprivileged.is_some() => return Err(SandboxError::DiskNeedsRoot),
            Some(bytes) => Some(disk::ScratchDisk::create(
                &spec.scratch_dir.with_extension("img"),
                bytes,
            )?),
            None => None,
        };
        let volumes = spec
            .volumes
            .iter()
            .map(|(image, _)| disk::Attached::image(image))
            .collect::<Result<Vec<_>, _>>()?;
        let throttled;
        let limits = match (&disk, &limits.io) {
            (Some(disk), Some(io)) if sync_io => {
                let mut io = io.clone();
                io.device = disk.device_number()?;
                // Volumes are written the same way and get the same throttles, each its own.
                io.also = volumes
                    .iter()
                    .map(|v| disk::device_number(&v.device))
                    .collect::<Result<_, _>>()?;
                throttled = CgroupLimits {
                    io: Some(io),
                    ..limits.clone()
                };
                &throttled
            }
            _ => limits,
        };
        // Groups made ahead have only the cpu, memory and pids controllers: exclusive cores
        // (cpuset), IO limits (blkio) and a freezer need a group made for them.
        let pooled = match (&self.cgroup_pool, &limits.exclusive_cores, &limits.io) {
            (Some(pool), None, None) if !limits.freezable => pool.take(limits),
            _ => None,
        };
        let cgroup = match &self.cgroups {
            _ if pooled.is_some() => pooled,
            Some(driver) => {
                let name = format!("{}/{}", self.run_group, spec.cgroup_name);
                Some(
                    driver
                        .create(&name, limits)
                        .map_err(|source| SandboxError::Cgroup { name, source })?,
                )
            }
            None => None,
        };
        let (status_rx, status_tx) = pipe()?;
        let joined = spec.join_netns.take();
        let mut netns = match (&spec.network, &self.netns_pool) {
            _ if joined.is_some() => None,
            (None, pool) => pool.as_ref().and_then(|pool| pool.take(None)),
            (Some(_), None) => return Err(SandboxError::NetworkNeedsRoot),
            (Some(shaping), Some(pool)) => Some(pool.take_or_make(Some(*shaping))?),
        };
        if spec.privileged {
            if let Some(lease) = &mut netns {
                lease.taint();
            }
        }
        let confinement = if spec.privileged {
            Confinement::Privileged
        } else {
            self.confinement()
        };
        let slot = match (&self.slots, confinement) {
            (Some(slots), Confinement::SlotUserns) => {
                Some(slots.take().map_err(|source| SandboxError::Os {
                    what: "user namespace",
                    source,
                })?)
            }
            _ => None,
        };
        let userns = match &slot {
            Some(lease) => Some((
                dup_fd(lease.userns()).map_err(|source| SandboxError::Os {
                    what: "user namespace descriptor",
                    source,
                })?,
                lease.host_root(),
            )),
            None => None,
        };
        let entry = spec.hold.then(|| {
            JoinEntry::new(entry::EntryInput {
                confinement,
                unprivileged: self.unprivileged.is_some(),
                cgroup_procs: cgroup
                    .as_ref()
                    .map(|cg| cg.procs_files())
                    .unwrap_or_default(),
                cgroup2: self.view.as_ref().is_some_and(|v| v.cgroup2),
                slot_userns: slot.as_ref().map(|s| s.userns()),
                allow: spec.allow,
                user: spec.image.as_ref().and_then(|i| i.user),
                cwd: &spec.cwd,
            })
        });
        let launch = Launch {
            confinement,
            view: self.view.clone(),
            masks: spec.masked.clone(),
            userns,
            allow: spec.allow,
            exe,
            cgroup_procs: cgroup
                .as_ref()
                .map(|cg| cg.procs_files())
                .unwrap_or_default(),
            status_tx,
            netns: match &netns {
                None if joined.is_some() => joined,
                Some(lease) => Some(lease.dup().map_err(|source| SandboxError::Os {
                    what: "network namespace descriptor",
                    source,
                })?),
                None => None,
            },
            unprivileged: self.unprivileged,
            scratch_device: disk.as_ref().map(|d| d.device().to_path_buf()),
            sync_mounts: sync_io,
            volume_devices: volumes
                .iter()
                .zip(&spec.volumes)
                .map(|(attached, (_, path))| (attached.device.clone(), path.clone()))
                .collect(),
            spec,
        };
        Ok((
            launch,
            Parts {
                cgroup,
                status_rx,
                disk,
                volumes,
                netns,
                slot,
                entry,
            },
        ))
    }

    /// Removes the run's (empty) cgroup and its bridge. Call after every container finished.
    pub fn close(&self) {
        if let Some(pool) = &self.netns_pool {
            pool.close();
        }
        if let Some(pool) = &self.cgroup_pool {
            pool.drain();
        }
        if let Some(driver) = &self.cgroups {
            if let Err(e) = driver.remove_group(&self.run_group) {
                tracing::warn!(group = %self.run_group, "removing the run's cgroup: {e}");
            }
        }
    }

    /// What this host can and cannot enforce of a test's request (`psy run
    /// --require-guarantees`), for tests whose scratch areas live under `scratch`.
    pub fn guarantees(&self, scratch: &Path) -> HostGuarantees {
        HostGuarantees::of(self, scratch)
    }
}

/// A close-on-exec duplicate of `fd`.
fn dup_fd(fd: std::os::fd::RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: plain fcntl; a non-negative result is a new fd we own.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// A close-on-exec, non-blocking pipe: (read end, write end).
fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    sys::pipe(libc::O_NONBLOCK).map_err(|source| SandboxError::Os {
        what: "status pipe",
        source,
    })
}

/// Whether a process with this pid exists (for finding what dead psy processes left behind).
pub fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Kills and removes the cgroups of psy processes that are gone; returns how many were removed.
pub fn gc_stale_cgroups() -> Result<usize, SandboxError> {
    let detected = cgroup::detect(Path::new("/proc"), CGROUP_PREFIX).map_err(|source| {
        SandboxError::Cgroup {
            name: CGROUP_PREFIX.into(),
            source,
        }
    })?;
    let Some(driver) = detected.driver else {
        return Ok(0);
    };
    let report = driver
        .gc(&cgroup::owner_alive(Path::new("/proc")))
        .map_err(|source| SandboxError::Cgroup {
            name: CGROUP_PREFIX.into(),
            source,
        })?;
    for (name, err) in &report.failed {
        tracing::warn!("removing stale cgroup {name}: {err}");
    }
    Ok(report.removed.len())
}
