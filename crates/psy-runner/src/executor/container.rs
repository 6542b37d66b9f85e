//! The default executor: every attempt in its own `psy-sandbox` container.

use super::{AttemptRequest, ExecOutcome, Executor, Running};
use crate::images::{Images, ResolvedImage};
use psy_model::CpuPolicy;
use psy_model::{TestId, TestSpec};
use psy_sandbox::cgroup::{block_device_of, CgroupLimits, IoLimits};
use psy_sandbox::{format_image, Container, ContainerSpec, ImageRoot, Sandbox};
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Runs attempts in sandbox containers. A clone shares the sandbox and the images: a
/// scenario's thread starts its nodes through one (only the original is ever closed).
#[derive(Clone, Debug)]
pub struct ContainerExecutor {
    sandbox: Arc<Sandbox>,
    cpu_policy: CpuPolicy,
    /// Where the run's volume images live (`.psyduck/volumes/<pid>-<run>`).
    volumes_dir: PathBuf,
    /// Keep the volume images after the run (`--keep-volumes`).
    keep_volumes: bool,
    /// The images tests run in, by the manifest's value (`crate::images::resolve`); shared
    /// with whoever resolves them while the run goes on (an agent, as jobs arrive).
    images: Arc<Mutex<Images>>,
    /// More host directories hidden from every test, beside its project's `.psyduck` (an
    /// agent's work dir).
    masked: Vec<PathBuf>,
    /// Each attempt's volumes are removed when it ends instead of with the run (an agent: the
    /// next attempt of a test runs wherever the server sends it).
    volumes_per_attempt: bool,
    /// The run's warm pytest interpreters (`warm = true`).
    warm: Arc<Mutex<super::warm::WarmPool>>,
}

impl ContainerExecutor {
    pub fn new(
        sandbox: Sandbox,
        cpu_policy: CpuPolicy,
        volumes_dir: PathBuf,
        keep_volumes: bool,
    ) -> Self {
        ContainerExecutor {
            sandbox: Arc::new(sandbox),
            cpu_policy,
            volumes_dir,
            keep_volumes,
            images: Arc::new(Mutex::new(Images::new())),
            masked: Vec::new(),
            volumes_per_attempt: false,
            warm: Arc::default(),
        }
    }

    /// The images the tests name (`image = "..."`), resolved before the run.
    pub fn set_images(&mut self, images: Images) {
        *lock(&self.images) = images;
    }

    /// The images attempts are started in, for adding images while the run goes on: a test
    /// whose `image` is a key of the map runs in that image.
    pub fn shared_images(&self) -> Arc<Mutex<Images>> {
        Arc::clone(&self.images)
    }

    /// Hides `dir` from every test too (behind an empty read-only tmpfs).
    pub fn mask(&mut self, dir: PathBuf) {
        self.masked.push(dir);
    }

    /// Removes each attempt's volumes when it ends.
    pub fn volumes_per_attempt(&mut self) {
        self.volumes_per_attempt = true;
    }

    /// The volume directory of `record_as` when its volumes go with each attempt (an agent's),
    /// to remove when the attempt ends; `None` when they stay for the run.
    pub(super) fn volumes_going_with(&self, record_as: &TestId) -> Option<PathBuf> {
        self.volumes_per_attempt.then(|| self.volumes_of(record_as))
    }

    /// The directory of the volume images of the attempt kept as `record_as`.
    fn volumes_of(&self, record_as: &TestId) -> PathBuf {
        self.volumes_dir.join(record_as.file_stem())
    }

    /// Where attempts' writable image layers live: removed with each attempt, and with the
    /// run's volumes (gc removes those of dead psy processes).
    fn writable_layers(&self) -> PathBuf {
        self.volumes_dir.join("rw")
    }

    /// The root of an attempt in an image: the image's layers under a writable layer of its own.
    fn image_root(
        &self,
        test: &TestSpec,
        image: Option<&ResolvedImage>,
        key: u64,
    ) -> Result<Option<ImageRoot>, String> {
        let Some(value) = &test.sandbox.image else {
            return Ok(None);
        };
        let image =
            image.ok_or_else(|| format!("image {value:?} of {} was not resolved", test.id))?;
        let dir = self.writable_layers().join(format!("a{key:06}"));
        let (upper_dir, work_dir) = (dir.join("upper"), dir.join("work"));
        for d in [&upper_dir, &work_dir] {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        Ok(Some(ImageRoot {
            layers: image.layers.clone(),
            upper_dir,
            work_dir,
            user_xattrs: image.user_xattrs,
            user: image.user,
            project_path: test.sandbox.project_path.clone(),
        }))
    }

    /// Has the sandbox make ahead the shaped network namespaces these tests will need (as many
    /// per shaping as tests that ask for it, up to what can run at once).
    pub fn expect_networks(&self, tests: &[TestSpec], max_at_once: usize) {
        let mut counts: Vec<(psy_sandbox::net::Shaping, usize)> = Vec::new();
        for shaping in tests
            .iter()
            .filter_map(|t| t.resources.network.map(shaping))
        {
            match counts.iter_mut().find(|(s, _)| *s == shaping) {
                Some((_, count)) => *count += 1,
                None => counts.push((shaping, 1)),
            }
        }
        for (shaping, count) in counts {
            self.sandbox.expect_network(shaping, count.min(max_at_once));
        }
    }

    /// The test's volume images, made (and formatted) at its first attempt and reused by the
    /// next ones: data written by one attempt is there for the retry.
    fn volumes(
        &self,
        test: &TestSpec,
        record_as: &TestId,
    ) -> Result<Vec<(PathBuf, PathBuf)>, String> {
        test.volumes
            .iter()
            .map(|v| {
                let dir = self.volumes_of(record_as);
                let image = dir.join(format!("{}.img", v.name));
                if !image.exists() {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                    format_image(&image, v.size_bytes)
                        .map_err(|e| format!("volume {} of {}: {e}", v.name, test.id))?;
                }
                Ok((image, v.path.clone()))
            })
            .collect()
    }
}

impl ContainerExecutor {
    /// The sandbox the containers start in.
    /// Warm workers discovery started: tests fork from them before any is started anew.
    pub fn take_warm_parents(&mut self, parents: Arc<psy_config::WarmParents>) {
        self.warm_pool().hand_over(parents);
    }

    pub(super) fn warm_pool(&self) -> std::sync::MutexGuard<'_, super::warm::WarmPool> {
        lock(&self.warm)
    }

    pub(super) fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// A directory for what a scenario keeps while it runs (its hosts file, its nodes' scratch
    /// areas), removed with the run's volumes (and by gc after a killed psy).
    pub(super) fn scenario_dir(&self, key: u64) -> PathBuf {
        self.volumes_dir
            .join("scenarios")
            .join(format!("a{key:06}"))
    }

    /// What identifies the image `test` runs in, for its result; `None`: the host's root.
    pub(super) fn image_id(&self, test: &TestSpec) -> Option<String> {
        let value = test.sandbox.image.as_ref()?;
        lock(&self.images).get(value).map(|i| i.id.clone())
    }

    pub(super) fn container_spec(
        &self,
        req: AttemptRequest<'_>,
    ) -> Result<(ContainerSpec, CgroupLimits), String> {
        let r = &req.test.resources;
        // IO throttles apply to the disk behind the attempt's writable storage.
        let io = match &r.io {
            Some(io) => {
                let device = block_device_of(&req.scratch).map_err(|e| {
                    format!(
                        "io limits of {}: finding the disk behind {}: {e}",
                        req.test.id,
                        req.scratch.display()
                    )
                })?;
                Some(IoLimits {
                    device,
                    also: Vec::new(),
                    read_bps: io.read_bps,
                    write_bps: io.write_bps,
                    read_iops: io.read_iops,
                    write_iops: io.write_iops,
                    weight: io.weight,
                })
            }
            None => None,
        };
        let limits = CgroupLimits {
            cpu_millis: r.cpu_millis,
            exclusive_cores: match self.cpu_policy {
                CpuPolicy::Exclusive => req.cores.clone(),
                CpuPolicy::Shared => None,
            },
            memory_bytes: r.memory_bytes,
            pids: r.pids,
            io,
            freezable: false,
        };
        let image = req
            .test
            .sandbox
            .image
            .as_ref()
            .and_then(|value| lock(&self.images).get(value).cloned());
        let (env, cwd) = match &image {
            Some(image) => image_env_and_cwd(image, req.test, req.env, &req.project_dir),
            None => (req.env, req.test.cwd.clone()),
        };
        // The store, logs and every other test's scratch area and images: the project's (if
        // it has any yet: an agent's jobs may come from a project psy never ran in) and the
        // executor's own (an agent's work dir).
        let project_state = crate::layout::StateDir::new(&req.project_dir)
            .root()
            .to_path_buf();
        let mut masked: Vec<PathBuf> = Vec::new();
        if self.masked.is_empty() || project_state.exists() {
            masked.push(project_state);
        }
        // The container's /tmp and /run are its own, and an image shows nothing of the host
        // but the project: what the host has there is hidden anyway, and a mask there would
        // have no directory to cover.
        let in_image = image.is_some();
        masked.extend(
            self.masked
                .iter()
                .filter(|m| !m.starts_with("/tmp") && !m.starts_with("/run"))
                .filter(|m| !in_image || m.starts_with(&req.project_dir))
                .cloned(),
        );
        let spec = ContainerSpec {
            argv: req.argv,
            env,
            cwd,
            hostname: req.test.id.hostname(),
            tmp_bytes: r.tmp_bytes,
            scratch_dir: req.scratch,
            scratch_bytes: r.disk_bytes,
            volumes: self.volumes(req.test, req.record_as)?,
            project_dir: req.project_dir.clone(),
            stdout: req.stdout,
            stderr: req.stderr,
            cgroup_name: format!("a{:06}", req.key),
            network: r.network.map(shaping),
            privileged: req.test.sandbox.privileged,
            masked,
            allow: psy_sandbox::Allowances {
                perf: req.test.sandbox.allow.contains(&psy_model::Allowance::Perf),
                bpf: req.test.sandbox.allow.contains(&psy_model::Allowance::Bpf),
            },
            writable: req.test.sandbox.writable.clone(),
            readonly: req.test.sandbox.readonly.clone(),
            image: self.image_root(req.test, image.as_ref(), req.key)?,
            join_netns: None,
            hosts_file: None,
            hold: false,
            clock_offset: None,
        };
        Ok((spec, limits))
    }
}

/// The environment and working directory of a test in `image`: the image's `Env` replaces
/// psy's own environment's values, the test's `env` and psy's `PSY_*` variables win over it;
/// the image's `WorkingDir` applies to a test without a `cwd` of its own (starting in the
/// project's directory).
fn image_env_and_cwd(
    image: &crate::images::ResolvedImage,
    test: &TestSpec,
    mut env: Vec<(String, String)>,
    project_dir: &std::path::Path,
) -> (Vec<(String, String)>, PathBuf) {
    for (name, value) in &image.env {
        if test.env.contains_key(name) || name.starts_with("PSY_") {
            continue;
        }
        match env.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value.clone(),
            None => env.push((name.clone(), value.clone())),
        }
    }
    let cwd = match (&image.working_dir, &test.sandbox.project_path) {
        (Some(dir), _) if test.cwd == project_dir && dir.is_absolute() => dir.clone(),
        // The project appears at `project-path`: so does a directory in it.
        (_, Some(at)) => match test.cwd.strip_prefix(project_dir) {
            Ok(rel) => at.join(rel),
            Err(_) => test.cwd.clone(),
        },
        _ => test.cwd.clone(),
    };
    (env, cwd)
}

/// The sandbox's shaping for a test's `network` rates.
fn shaping(n: psy_model::NetworkRequest) -> psy_sandbox::net::Shaping {
    psy_sandbox::net::Shaping {
        egress_bit_per_sec: n.egress_bps,
        ingress_bit_per_sec: n.ingress_bps,
    }
}

impl Executor for ContainerExecutor {
    fn start(&mut self, req: AttemptRequest<'_>) -> Result<Box<dyn Running>, String> {
        self.start_many(vec![req])
            .pop()
            .expect("one result per request")
    }

    fn start_many(
        &mut self,
        requests: Vec<AttemptRequest<'_>>,
    ) -> Vec<Result<Box<dyn Running>, String>> {
        // Requests that cannot become a container fail alone; the rest start as one batch.
        let mut valid = Vec::with_capacity(requests.len());
        // Each started container's writable image layer, image id and volumes to remove.
        let mut kept: Vec<(Option<PathBuf>, Option<String>, Option<PathBuf>)> = Vec::new();
        let mut results: Vec<Option<Result<Box<dyn Running>, String>>> =
            Vec::with_capacity(requests.len());
        for request in requests {
            if request.test.is_scenario() {
                results.push(Some(super::scenario::start(self.clone(), request)));
                continue;
            }
            let request = match super::warm::cold_reason(&request) {
                Some(reason) => {
                    self.warm_pool().warn_once(reason);
                    request
                }
                None => match super::warm::parent_for(self, &request) {
                    Some(parent) => {
                        results.push(Some(super::warm::start(self, request, parent)));
                        continue;
                    }
                    None => request,
                },
            };
            let image = request
                .test
                .sandbox
                .image
                .as_ref()
                .and_then(|value| lock(&self.images).get(value).map(|i| i.id.clone()));
            let volumes = (self.volumes_per_attempt && !request.test.volumes.is_empty())
                .then(|| self.volumes_of(request.record_as));
            match self.container_spec(request) {
                Ok((spec, limits)) => {
                    let upper = spec.image.as_ref().map(|i| i.upper_dir.clone());
                    let layer = upper.and_then(|u| u.parent().map(PathBuf::from));
                    kept.push((layer, image, volumes));
                    valid.push((spec, limits));
                    results.push(None);
                }
                Err(message) => {
                    remove_dir(volumes, "volumes");
                    results.push(Some(Err(message)));
                }
            }
        }
        let mut started = self.sandbox.spawn_many(valid).into_iter().zip(kept);
        results
            .into_iter()
            .map(|slot| match slot {
                Some(failed) => failed,
                None => match started.next().expect("one result per spawned spec") {
                    (Ok(container), (writable_layer, image, volumes)) => {
                        Ok(Box::new(ContainerRun {
                            container,
                            writable_layer,
                            image,
                            volumes,
                        }) as Box<dyn Running>)
                    }
                    (Err(e), (writable_layer, _, volumes)) => {
                        remove_writable_layer(writable_layer);
                        remove_dir(volumes, "volumes");
                        Err(e.to_string())
                    }
                },
            })
            .collect()
    }

    fn warnings(&self) -> Vec<String> {
        self.sandbox.warnings().to_vec()
    }

    fn close(&mut self) {
        self.warm_pool().close();
        self.sandbox.close();
        remove_writable_layer(Some(self.writable_layers()));
        if self.keep_volumes {
            // Out of gc's reach (it removes `<pid>-<run>` directories of dead psy processes).
            if let Some(name) = self.volumes_dir.file_name().and_then(|n| n.to_str()) {
                let run = name.split_once('-').map_or(name, |(_, run)| run);
                let kept = self.volumes_dir.with_file_name(format!("kept-{run}"));
                match std::fs::rename(&self.volumes_dir, &kept) {
                    Ok(()) => tracing::info!("volumes kept in {}", kept.display()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!("keeping volumes in {}: {e}", kept.display()),
                }
            }
        } else if let Err(e) = psy_sandbox::remove_tree(&self.volumes_dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("removing volumes {}: {e}", self.volumes_dir.display());
            }
        }
    }
}

/// A running attempt, and its writable image layer (removed when it has finished).
#[derive(Debug)]
struct ContainerRun {
    container: Container,
    writable_layer: Option<PathBuf>,
    /// What identifies the attempt's image in its result.
    image: Option<String>,
    /// Its volumes, when they go with the attempt (see `volumes_per_attempt`).
    volumes: Option<PathBuf>,
}

/// Removes `dir` (the `what` of an attempt), if any.
fn remove_dir(dir: Option<PathBuf>, what: &str) {
    let Some(dir) = dir else { return };
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("removing the {what} {}: {e}", dir.display());
        }
    }
}

/// The map behind `m`, whatever a panicking holder left (every update is one call).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn remove_writable_layer(dir: Option<PathBuf>) {
    let Some(dir) = dir else { return };
    // overlayfs' work directory holds mode-000 directories: psy without root must open them.
    if let Err(e) = psy_sandbox::remove_tree(&dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("removing the writable image layer {}: {e}", dir.display());
        }
    }
}

impl Running for ContainerRun {
    fn wait_fd(&self) -> RawFd {
        self.container.pidfd()
    }

    fn kill(&mut self) {
        self.container.kill();
    }

    fn set_cores(&mut self, cores: &[u32]) {
        if let Err(e) = self.container.set_cores(cores) {
            tracing::warn!(
                pid = self.container.pid(),
                "moving a container to cores {cores:?}: {e}"
            );
        }
    }

    fn finish(self: Box<Self>) -> ExecOutcome {
        let outcome = self.container.finish();
        remove_writable_layer(self.writable_layer);
        remove_dir(self.volumes, "volumes");
        exec_outcome(outcome, self.image)
    }
}

/// What the run records of a container that ended (in image `image`, if any).
pub(super) fn exec_outcome(outcome: psy_sandbox::Outcome, image: Option<String>) -> ExecOutcome {
    ExecOutcome {
        exit: outcome.exit,
        error: outcome.setup_error.map(|e| e.to_string()),
        wall_time: outcome.wall_time,
        cpu_time: outcome.stats.cpu_time,
        peak_memory_bytes: outcome.stats.peak_memory_bytes,
        io_read_bytes: outcome.stats.io_read_bytes,
        io_write_bytes: outcome.stats.io_write_bytes,
        io_read_ops: outcome.stats.io_read_ops,
        io_write_ops: outcome.stats.io_write_ops,
        network_bytes: outcome.network_bytes,
        oom_killed: outcome.stats.oom_killed,
        failure: None,
        image,
    }
}

/// Removes an image container's writable layer (the parent of its upper directory), if any.
pub(super) fn remove_layer_of(spec_image: Option<&ImageRoot>) -> impl FnOnce() {
    let layer = spec_image.and_then(|i| i.upper_dir.parent().map(PathBuf::from));
    move || remove_writable_layer(layer)
}
