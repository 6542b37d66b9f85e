//! The engine: everything between "these tests, with these settings" and a finished run, so
//! that every front end (`psy run`, and `psy agent` through [`Engine::prepare_agent`]) drives
//! the same code. It takes the
//! project lock, cleans up after dead psy processes, detects the host, names the run, makes
//! the sandbox and the executor, and then runs the tests (see [`crate::run()`]).
//!
//! The front end keeps only what is its own: parsing arguments, choosing the tests, building
//! reporters and turning the [`RunOutcome`] into an exit code.

mod agent;
mod checks;
mod error;
pub mod gc;
pub mod guarantees;
mod host;

pub use agent::{Admission, AgentRun, PreparedAgent};
pub use error::{GcError, PrepareError};
pub use host::LocalHost;

use crate::executor::ContainerExecutor;
use crate::jobs::LocalJobs;
use crate::layout::{ProjectLock, StateDir};
use crate::logs::LocalLogs;
use crate::{RunControl, RunError, RunOutcome, RunSettings};
use psy_config::HostConfig;
use psy_model::{LogStore, RunEvent, RunId, TestSpec};
use psy_sandbox::Sandbox;
use psy_scheduler::Limits;
use psy_store::{SqliteStore, Store};
use std::path::PathBuf;
use std::sync::Arc;

/// A run of the selected tests of one project on this machine, as `psy run` asks for it.
#[derive(Debug)]
pub struct LocalRun {
    /// The manifest's directory (`.psyduck` lives there).
    pub project_dir: PathBuf,
    pub manifest: PathBuf,
    pub host: HostConfig,
    /// In the order they run in when nothing else decides (see `psy_scheduler`).
    pub tests: Vec<TestSpec>,
    pub limits: Limits,
    /// Overrides every test's `retries`.
    pub retries: Option<u32>,
    pub control: RunControl,
    /// Tests with `privileged = true` may run.
    pub allow_privileged: bool,
    /// Refuse to run when a test asks for a guarantee this host cannot enforce (the flag; the
    /// manifest's `[host] require-guarantees` counts too).
    pub require_guarantees: bool,
    /// Keep the run's volume images after it (`--keep-volumes`).
    pub keep_volumes: bool,
    /// Recorded with the run.
    pub command_line: String,
    /// Warm pytest workers discovery started (`warm = true`): their tests fork from them
    /// instead of collecting again.
    pub warm_parents: Option<Arc<psy_config::WarmParents>>,
}

/// A run ready to start: the project locked (until this is dropped), the store open and
/// cleaned, the sandbox and executor made.
pub struct Prepared {
    settings: RunSettings,
    tests: Vec<TestSpec>,
    retries: Option<u32>,
    control: RunControl,
    store: Box<dyn Store>,
    logs: Arc<LocalLogs>,
    executor: ContainerExecutor,
    /// Last, so it is released after the store and the sandbox are gone.
    _lock: ProjectLock,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("run_id", &self.settings.run_id)
            .field("tests", &self.tests.len())
            .finish_non_exhaustive()
    }
}

/// The engine of one machine.
#[derive(Debug)]
pub struct Engine;

impl Engine {
    /// Everything a run needs, in the order that refuses cheaply first: the host and the tests
    /// (nothing touched), then the project lock, the store and its clean-up, the sandbox and
    /// strict mode's check of what it can enforce.
    pub fn prepare(run: LocalRun) -> Result<Prepared, PrepareError> {
        Self::prepare_with(run, &psy_image::NoProgress)
    }

    /// [`Engine::prepare`], showing the unpacking of images' layers to `images` (a progress
    /// bar, say).
    pub fn prepare_with(
        run: LocalRun,
        images: &dyn psy_image::Progress,
    ) -> Result<Prepared, PrepareError> {
        let host = LocalHost::detect(&run.host, &run.manifest)?;
        host.check(&run.tests)?;
        let state = StateDir::new(&run.project_dir);
        let containers = psy_model::test::with_nodes_as_tests(&run.tests);
        checks::writable(&containers, &state)?;
        checks::privileged(&containers, run.allow_privileged)?;
        let pull = psy_image::PullOptions {
            insecure_registries: host.images.insecure_registries.clone(),
            ..psy_image::PullOptions::default()
        };
        let images = crate::images::resolve(&containers, &run.project_dir, &pull, images)
            .map_err(PrepareError::Image)?;

        let lock = state
            .try_lock()
            .map_err(|source| PrepareError::Lock {
                state: state.root().to_path_buf(),
                source,
            })?
            .ok_or_else(|| PrepareError::Locked {
                project: run.project_dir.clone(),
            })?;
        let mut store = open_store(&state)?;
        let cleaned = gc::collect(&state, store.as_mut())?;
        tracing::debug!(?cleaned, "cleaned up after dead psy processes");

        let run_id = new_run_id();
        tracing::debug!(%run_id, tests = run.tests.len(), capacity = ?host.capacity, "preparing the run");
        let sandbox = Sandbox::new(run_id.as_str()).map_err(PrepareError::Sandbox)?;
        let policy = run.host.cpu_policy;
        let gaps = guarantees::find(&sandbox.guarantees(state.root()), &containers, policy);
        if !gaps.is_empty() && (run.require_guarantees || run.host.require_guarantees) {
            sandbox.close();
            return Err(PrepareError::Unenforceable(guarantees::Unenforceable(gaps)));
        }
        let mut executor = ContainerExecutor::new(
            sandbox,
            policy,
            state.run_volumes(&run_id),
            run.keep_volumes,
        );
        // At most as many shaped attempts run at once as fit the smallest CPU request.
        let min_cpu = run
            .tests
            .iter()
            .map(|t| t.resources.cpu_millis.max(1))
            .min()
            .unwrap_or(1);
        let at_once = (host.capacity.cpu_millis / min_cpu).max(1) as usize;
        executor.expect_networks(&run.tests, at_once);
        executor.set_images(images);
        if let Some(parents) = &run.warm_parents {
            executor.take_warm_parents(Arc::clone(parents));
        }

        let logs = Arc::new(LocalLogs::new(state.clone()));
        let settings = RunSettings {
            run_id,
            project_dir: run.project_dir,
            state,
            capacity: host.capacity,
            cpu_policy: policy,
            limits: run.limits,
            manifest: run.manifest.display().to_string(),
            command_line: run.command_line,
            warnings: guarantees::warnings(&gaps),
        };
        Ok(Prepared {
            settings,
            tests: run.tests,
            retries: run.retries,
            control: run.control,
            store,
            logs,
            executor,
            _lock: lock,
        })
    }
}

impl Prepared {
    pub fn run_id(&self) -> &RunId {
        &self.settings.run_id
    }

    pub fn tests(&self) -> &[TestSpec] {
        &self.tests
    }

    /// Where the run's output goes, for reporters that show it.
    pub fn logs(&self) -> Arc<dyn LogStore> {
        Arc::clone(&self.logs) as Arc<dyn LogStore>
    }

    /// Runs the tests (first attempts in their order, longest expected first as the scheduler
    /// ranks them), emitting the run's events; each attempt is in the store before its event is
    /// emitted. The project stays locked until this returns.
    pub fn run(self, emit: &mut dyn FnMut(&RunEvent)) -> Result<RunOutcome, RunError> {
        let Prepared {
            settings,
            tests,
            retries,
            control,
            mut store,
            logs,
            mut executor,
            _lock,
        } = self;
        let expected = store.expected_durations()?;
        let mut jobs = LocalJobs::new(tests, &expected, retries, control);
        let store = store.as_mut();
        crate::run(
            settings,
            &mut jobs,
            store,
            logs.as_ref(),
            &mut executor,
            emit,
        )
    }
}

/// The project's store: the embedded SQLite database in `.psyduck`.
pub fn open_store(state: &StateDir) -> Result<Box<dyn Store>, PrepareError> {
    let path = state.database();
    match SqliteStore::open(&path) {
        Ok(store) => Ok(Box::new(store)),
        Err(source) => Err(PrepareError::OpenStore { path, source }),
    }
}

/// `YYYYMMDD-HHMMSS-xxxx`: sortable by start time, unique enough for one project.
fn new_run_id() -> RunId {
    let ([year, month, day, hour, minute, second], now) = crate::clock::utc_now();
    let salt = (now.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    RunId(format!(
        "{year:04}{month:02}{day:02}-{hour:02}{minute:02}{second:02}-{salt:04x}"
    ))
}
