//! Warm starts (`warm = true` on a pytest discovery): a test is a fork of a warm interpreter
//! that collected the suite once, joined into a container psy holds for it.
//!
//! For each attempt psy starts the same container a cold attempt gets (its cgroup with the
//! test's limits, root, `/tmp`, scratch, network), but *held*: the init sets everything up and
//! starts nothing (`ContainerSpec::hold`). The warm worker of the test's interpreter group then
//! forks a child that performs the container's [`psy_sandbox::JoinEntry`] and runs the one item
//! through pytest's protocol. The run loop waits on the child's pidfd; a kill (timeout) kills the
//! held init, which takes the whole PID namespace, the child included, with it. Afterwards the
//! held container is killed and measured like any other (CPU, peak memory, OOM kills).
//!
//! A test starts cold, with a warning naming why, when a warm start is impossible: it runs in
//! an image (the interpreter is the host's), its interpreter could not collect the suite, or the
//! interpreter does not know its item.

use super::container::{exec_outcome, ContainerExecutor};
use super::{AttemptRequest, ExecOutcome, Running};
use psy_model::{ExitInfo, TestSpec};
use psy_sandbox::Container;
use psy_warm::{ChildExit, Entry, RunRequest, WarmChild, WarmParent};
use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a warm interpreter may take to collect before its tests start cold.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a held container may take to be set up.
const HOLD_TIMEOUT: Duration = Duration::from_secs(30);

/// The file in the attempt's scratch directory where the warm child writes its result.
pub(crate) fn result_file(scratch: &std::path::Path) -> PathBuf {
    scratch.join(".psy-result.json")
}

/// Variables that differ between attempts: not part of an interpreter's environment.
const PER_ATTEMPT: [&str; 3] = ["PSY_TEST_ID", "PSY_ATTEMPT", "PSY_SCRATCH"];

/// What identifies one warm interpreter: its discovery's collection and its environment.
type ParentKey = (
    String,
    Vec<String>,
    PathBuf,
    Vec<String>,
    Vec<(String, String)>,
);

/// The run's warm interpreters, started on their first test (or handed over by discovery).
#[derive(Debug, Default)]
pub(crate) struct WarmPool {
    parents: HashMap<ParentKey, Slot>,
    /// Reasons for cold starts already warned about in this run.
    warned: Vec<&'static str>,
    /// Workers discovery started, taken by the first test of their group.
    handed: Option<Arc<psy_config::WarmParents>>,
}

#[derive(Debug)]
enum Slot {
    Ready(Arc<Mutex<WarmParent>>),
    /// Could not collect: its tests start cold (the reason was warned about once).
    Broken,
}

impl WarmPool {
    /// Workers discovery started, for the tests that fork from them.
    pub(crate) fn hand_over(&mut self, parents: Arc<psy_config::WarmParents>) {
        self.handed = Some(parents);
    }

    /// The interpreter `test` forks from in `env`: discovery's, or started now if it is the
    /// first of its group; `None` when its tests must start cold.
    fn parent(
        &mut self,
        test: &TestSpec,
        env: &[(String, String)],
    ) -> Option<Arc<Mutex<WarmParent>>> {
        let warm = test.warm.as_ref()?;
        let env: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| !PER_ATTEMPT.contains(&k.as_str()))
            .cloned()
            .collect();
        let key = (
            warm.python.clone(),
            warm.args.clone(),
            warm.dir.clone(),
            warm.fixtures.clone(),
            env,
        );
        let handed = self.handed.as_ref();
        let slot = self.parents.entry(key).or_insert_with_key(|key| {
            if let Some(parent) = handed.and_then(|h| h.take_for(test)) {
                tracing::debug!(
                    items = parent.items().len(),
                    "{}: forks from the warm interpreter discovery started",
                    test.id
                );
                return Slot::Ready(Arc::new(Mutex::new(parent)));
            }
            let (python, args, dir, _, env) = key;
            let started = Instant::now();
            match WarmParent::start_exactly(python, args, dir, env, Some(COLLECT_TIMEOUT)) {
                Ok(parent) => {
                    tracing::debug!(
                        items = parent.items().len(),
                        ms = started.elapsed().as_millis() as u64,
                        "warm pytest interpreter ready in {}",
                        dir.display()
                    );
                    Slot::Ready(Arc::new(Mutex::new(parent)))
                }
                Err(e) => {
                    tracing::warn!(
                        "warm starts off for `{python}` in {}: {e}; its tests start cold",
                        dir.display()
                    );
                    Slot::Broken
                }
            }
        });
        if let Slot::Ready(parent) = slot {
            let mut worker = lock(parent);
            if !worker.is_alive() {
                tracing::warn!(
                    "the warm pytest interpreter (pid {}) in {} is gone; its tests start cold",
                    worker.pid(),
                    warm.dir.display()
                );
                drop(worker);
                *slot = Slot::Broken;
            }
        }
        match slot {
            Slot::Ready(parent) => Some(Arc::clone(parent)),
            Slot::Broken => None,
        }
    }

    /// Warns about tests starting cold for `reason`, once per run.
    pub(crate) fn warn_once(&mut self, reason: &'static str) {
        if !self.warned.contains(&reason) {
            self.warned.push(reason);
            tracing::warn!("warm tests start cold: {reason}");
        }
    }

    /// Stops every interpreter (after the run's last attempt), discovery's unused ones too.
    pub(crate) fn close(&mut self) {
        if let Some(handed) = self.handed.take() {
            for (_, parent) in handed.take_all() {
                if let Err(e) = parent.shutdown() {
                    tracing::warn!("stopping an unused warm pytest interpreter: {e}");
                }
            }
        }
        for (_, slot) in self.parents.drain() {
            if let Slot::Ready(parent) = slot {
                if let Ok(parent) = Arc::try_unwrap(parent) {
                    let parent = parent.into_inner().unwrap_or_else(|e| e.into_inner());
                    if let Err(e) = parent.shutdown() {
                        tracing::warn!("stopping a warm pytest interpreter: {e}");
                    }
                }
            }
        }
    }
}

/// Why `request` cannot start warm, if it cannot (it then starts cold).
pub(crate) fn cold_reason(request: &AttemptRequest<'_>) -> Option<&'static str> {
    let test = request.test;
    test.warm.as_ref()?;
    if test.sandbox.image.is_some() {
        return Some("it runs in an image, and the warm interpreter is the host's");
    }
    None
}

/// The interpreter `request` forks from; `None`: it starts cold (warned about).
pub(crate) fn parent_for(
    executor: &ContainerExecutor,
    request: &AttemptRequest<'_>,
) -> Option<Arc<Mutex<WarmParent>>> {
    let warm = request.test.warm.as_ref()?;
    let parent = executor.warm_pool().parent(request.test, &request.env)?;
    if !lock(&parent).items().contains(&warm.item) {
        tracing::warn!(
            "{}: the warm interpreter did not collect `{}`; it starts cold",
            request.test.id,
            warm.item
        );
        return None;
    }
    Some(parent)
}

/// Starts `request` as a fork of `parent` (from [`parent_for`]).
pub(crate) fn start(
    executor: &ContainerExecutor,
    request: AttemptRequest<'_>,
    parent: Arc<Mutex<WarmParent>>,
) -> Result<Box<dyn Running>, String> {
    let Some(warm) = request.test.warm.clone() else {
        return Err(format!("{}: not a warm test", request.test.id));
    };
    let started = Instant::now();
    let id = request.test.id.to_string();
    let attempt = request.attempt;
    let env: BTreeMap<String, String> = request.env.iter().cloned().collect();
    let result = result_file(&request.scratch);
    // The worker reopens psy's own log descriptors (it runs as psy's user, as psy's child);
    // these copies stay open until it has (the container's own are closed once it is set up).
    let logs = (request.stdout.try_clone(), request.stderr.try_clone());
    let (Ok(out), Ok(err)) = &logs else {
        return Err(format!("{id}: duplicating its log descriptors"));
    };
    let psy = std::process::id();
    let stdout = PathBuf::from(format!("/proc/{psy}/fd/{}", out.as_raw_fd()));
    let stderr = PathBuf::from(format!("/proc/{psy}/fd/{}", err.as_raw_fd()));
    let (mut spec, limits) = executor.container_spec(request)?;
    spec.hold = true;
    let mut container = executor
        .sandbox()
        .spawn(spec, &limits)
        .map_err(|e| format!("{id}: starting its held container: {e}"))?;
    let entry = container
        .wait_held(HOLD_TIMEOUT)
        .map_err(|e| format!("{id}: {e}"))?
        .clone();
    let run = RunRequest {
        run: warm.item,
        test_id: id.clone(),
        attempt,
        env,
        stdout,
        stderr,
        result,
        entry: Entry::Join(entry),
    };
    let child = lock(&parent)
        .run(&run)
        .map_err(|e| format!("{id}: the warm interpreter could not start it: {e}"))?;
    drop(logs);
    Ok(Box::new(WarmRun {
        container: Some(container),
        child: Some(child),
        parent,
        started,
    }))
}

/// A warm attempt: the forked child and the container it joined.
#[derive(Debug)]
struct WarmRun {
    container: Option<Container>,
    child: Option<WarmChild>,
    parent: Arc<Mutex<WarmParent>>,
    started: Instant,
}

impl Running for WarmRun {
    fn wait_fd(&self) -> RawFd {
        self.child
            .as_ref()
            .map_or(-1, |child| child.as_fd().as_raw_fd())
    }

    fn kill(&mut self) {
        // The held init takes its PID namespace, the child included, with it.
        if let Some(container) = &self.container {
            container.kill();
        }
        if let Some(child) = &self.child {
            let _ = child.kill();
        }
    }

    fn set_cores(&mut self, cores: &[u32]) {
        if let Some(container) = &self.container {
            if let Err(e) = container.set_cores(cores) {
                tracing::warn!("moving a warm test to cores {cores:?}: {e}");
            }
        }
    }

    fn finish(mut self: Box<Self>) -> ExecOutcome {
        let ended = self
            .child
            .take()
            .map(|child| lock(&self.parent).wait(child));
        let wall_time = self.started.elapsed();
        let container = self.container.take().expect("finished once");
        container.kill();
        let mut outcome = exec_outcome(container.finish(), None);
        outcome.wall_time = wall_time;
        match ended {
            Some(Ok(ended)) => {
                outcome.exit = match ended.exit {
                    ChildExit::Code(code) => ExitInfo {
                        code: Some(code),
                        signal: None,
                    },
                    ChildExit::Signal(signal) => ExitInfo {
                        code: None,
                        signal: Some(signal),
                    },
                };
            }
            Some(Err(e)) => {
                outcome.error = Some(format!("the warm interpreter: {e}"));
                outcome.exit = ExitInfo::default();
            }
            None => outcome.error = Some("the warm child was never started".into()),
        }
        outcome
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
