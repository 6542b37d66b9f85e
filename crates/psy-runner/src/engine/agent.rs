//! The engine of a fleet agent (`psy agent`): one engine run that lasts as long as the agent
//! and takes jobs from many server runs and projects through its job source.
//!
//! What `psy run` checks once for its selected tests before anything runs ([`Admission`]: the
//! test fits the agent, asks for nothing it lacks the privileges for, its directories exist and
//! stay out of psy's state, its image resolves) is checked here per job as it arrives, and a
//! refusal becomes that job's error result instead of ending the run. The agent's state (its
//! store, logs, scratch areas, volumes, lock) lives in its work dir, laid out as a project's
//! `.psyduck`, and is hidden from every test.

use super::error::PrepareError;
use super::{checks, gc, new_run_id, open_store};
use crate::executor::ContainerExecutor;
use crate::images::Images;
use crate::jobs::JobSource;
use crate::layout::{ProjectLock, StateDir};
use crate::logs::LocalLogs;
use crate::{RunError, RunOutcome, RunSettings};
use psy_model::{Capacity, CpuPolicy, RunEvent, RunId, TestSpec};
use psy_sandbox::Sandbox;
use psy_scheduler::Limits;
use psy_store::Store;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A fleet agent's engine run, as `psy agent` asks for it.
#[derive(Debug)]
pub struct AgentRun {
    /// The agent's own state (store, logs, scratch, volumes, lock): never a project's.
    pub work_dir: PathBuf,
    /// What the agent offers: the machine as detected, or the share it was given.
    pub capacity: Capacity,
    /// Tests with `privileged = true` may run.
    pub allow_privileged: bool,
    /// Recorded with the engine run in place of a manifest: which agent of which server.
    pub describe: String,
    /// Recorded with the engine run.
    pub command_line: String,
}

/// An agent's engine run ready to start: its work dir locked (until this is dropped), what a
/// killed agent left there cleaned, the store open, the sandbox and executor made.
pub struct PreparedAgent {
    settings: RunSettings,
    store: Box<dyn Store>,
    logs: Arc<LocalLogs>,
    executor: ContainerExecutor,
    admission: Admission,
    /// Last, so it is released after the store and the sandbox are gone.
    _lock: ProjectLock,
}

impl std::fmt::Debug for PreparedAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedAgent")
            .field("run_id", &self.settings.run_id)
            .field("work_dir", &self.settings.state.root())
            .finish_non_exhaustive()
    }
}

impl super::Engine {
    /// Locks `run.work_dir` (one agent per work dir), cleans what a killed psy left there (its
    /// processes' cgroups, scratch areas, volumes, networks and log files; its engine run is
    /// marked aborted), and makes the sandbox and the executor.
    pub fn prepare_agent(run: AgentRun) -> Result<PreparedAgent, PrepareError> {
        let state = StateDir::at(&run.work_dir);
        let lock = state
            .try_lock()
            .map_err(|source| PrepareError::Lock {
                state: state.root().to_path_buf(),
                source,
            })?
            .ok_or_else(|| PrepareError::WorkDirLocked {
                work_dir: run.work_dir.clone(),
            })?;
        let mut store = open_store(&state)?;
        let cleaned = gc::collect(&state, store.as_mut())?;
        let old_logs = remove_old_logs(&state);
        tracing::info!(
            cgroups = cleaned.cgroups,
            scratch_dirs = cleaned.scratch_dirs,
            links = cleaned.links,
            aborted_runs = cleaned.aborted_runs,
            old_logs,
            "cleaned up after dead psy processes in {}",
            state.root().display()
        );

        let run_id = new_run_id();
        let sandbox = Sandbox::new(run_id.as_str()).map_err(PrepareError::Sandbox)?;
        // Shared: several agents may split one machine, and exclusive cores would collide.
        let policy = CpuPolicy::Shared;
        let mut executor =
            ContainerExecutor::new(sandbox, policy, state.run_volumes(&run_id), false);
        executor.mask(state.root().to_path_buf());
        executor.volumes_per_attempt();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let host_file = psy_config::host_file::load(&psy_config::host_file::default_path())?
            .unwrap_or_default();
        let admission = Admission {
            capacity: run.capacity.clone(),
            root,
            state: state.clone(),
            allow_privileged: run.allow_privileged,
            images: executor.shared_images(),
            pull: psy_image::PullOptions {
                insecure_registries: host_file.images.insecure_registries,
                ..psy_image::PullOptions::default()
            },
        };
        let logs = Arc::new(LocalLogs::new(state.clone()));
        let settings = RunSettings {
            run_id,
            project_dir: run.work_dir,
            state,
            capacity: run.capacity,
            cpu_policy: policy,
            limits: Limits::default(),
            manifest: run.describe,
            command_line: run.command_line,
            warnings: Vec::new(),
        };
        Ok(PreparedAgent {
            settings,
            store,
            logs,
            executor,
            admission,
            _lock: lock,
        })
    }
}

impl PreparedAgent {
    pub fn run_id(&self) -> &RunId {
        &self.settings.run_id
    }

    /// The per-job checks, for the job source (they may run on any thread).
    pub fn admission(&self) -> Admission {
        self.admission.clone()
    }

    /// Releases the sandbox without running anything (the agent stops before its first job).
    pub fn close(mut self) {
        use crate::executor::Executor;
        self.executor.close();
    }

    /// Runs what `jobs` offers until it is done or a signal stops the agent: each attempt is
    /// recorded in the agent's store and its output kept in its work dir's logs before `jobs`
    /// hears of it.
    pub fn run(
        self,
        jobs: &mut dyn JobSource,
        emit: &mut dyn FnMut(&RunEvent),
    ) -> Result<RunOutcome, RunError> {
        let PreparedAgent {
            settings,
            mut store,
            logs,
            mut executor,
            admission: _,
            _lock,
        } = self;
        crate::run(
            settings,
            jobs,
            store.as_mut(),
            logs.as_ref(),
            &mut executor,
            emit,
        )
    }
}

/// Whether a job's test may run on this agent, checked as each job arrives.
#[derive(Clone, Debug)]
pub struct Admission {
    capacity: Capacity,
    root: bool,
    state: StateDir,
    allow_privileged: bool,
    /// The executor's images: a test's image is resolved into it before the test is offered.
    images: Arc<Mutex<Images>>,
    /// How images are pulled here (the host file's `[images]`).
    pull: psy_image::PullOptions,
}

impl Admission {
    /// What the agent offers.
    pub fn capacity(&self) -> &Capacity {
        &self.capacity
    }

    /// `test` of the project in `project_dir` as the engine should run it, or why it cannot
    /// run here (one line). Its image, if any, is resolved (pulled or unpacked as needed) and
    /// named by its id, which the executor knows from now on.
    pub fn admit(&self, test: &TestSpec, project_dir: &Path) -> Result<TestSpec, String> {
        let tests = std::slice::from_ref(test);
        psy_config::check_fits(tests, &self.capacity).map_err(|e| e.to_string())?;
        psy_config::check_privileges(tests, self.root).map_err(|e| e.to_string())?;
        let containers = psy_model::test::with_nodes_as_tests(tests);
        let tests: &[TestSpec] = &containers;
        checks::privileged(tests, self.allow_privileged).map_err(|e| match e {
            PrepareError::PrivilegedNotAllowed { .. } => format!(
                "test `{}` asks for `privileged = true` (host root's powers, no sandbox \
                 hardening); this agent runs such tests only with --allow-privileged",
                test.id
            ),
            other => other.to_string(),
        })?;
        checks::writable(tests, &StateDir::new(project_dir)).map_err(|e| e.to_string())?;
        checks::writable(tests, &self.state).map_err(|e| e.to_string())?;
        let mut admitted = test.clone();
        let resolved = crate::images::resolve(tests, project_dir, &self.pull, &LayerLog)?;
        // By its id: two projects may name different images alike (relative paths).
        let by_id = |sandbox: &mut psy_model::SandboxRequest| {
            let Some(image) = sandbox.image.as_ref().and_then(|v| resolved.get(v)) else {
                return;
            };
            sandbox.image = Some(image.id.clone());
            let mut images = self.images.lock().unwrap_or_else(|e| e.into_inner());
            images.insert(image.id.clone(), image.clone());
        };
        by_id(&mut admitted.sandbox);
        for node in &mut admitted.nodes {
            by_id(&mut node.sandbox);
        }
        Ok(admitted)
    }
}

/// Removes the log directories of earlier engine runs in the work dir (a killed agent's:
/// their attempts were reported, or will run again elsewhere once their leases expire).
/// Call with the work dir locked; returns how many were removed.
fn remove_old_logs(state: &StateDir) -> usize {
    let Ok(entries) = std::fs::read_dir(state.logs_root()) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        if entry.file_name() == ".spare" {
            continue;
        }
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!("removing old logs {}: {e}", entry.path().display()),
        }
    }
    removed
}

/// Image layers an agent unpacks, in its log.
struct LayerLog;

impl psy_image::Progress for LayerLog {
    fn layer_started(&self, layer: &str, size: Option<u64>) {
        tracing::info!(layer, size, "unpacking image layer");
    }
}
