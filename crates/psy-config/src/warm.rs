//! The warm pytest workers discovery started: with `warm = true` and a [`WarmParents`] in the
//! [`crate::DiscoverOptions`], a pytest entry collects by starting its warm worker (instead of
//! `pytest --collect-only`), takes the node ids from it, and leaves the worker here for the
//! runner to fork its tests from. The suite is then collected once per run.

use psy_model::{TestSpec, WarmStart};
use psy_warm::WarmParent;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

/// What makes two warm tests share one worker: the worker's command line, directory and
/// warm fixtures ([`WarmStart::parent`]) and the environment it was started with (import-time
/// code sees it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WarmKey {
    pub python: String,
    pub args: Vec<String>,
    pub dir: PathBuf,
    pub fixtures: Vec<String>,
    /// Added to psy's own environment (the `[[discover]]` entry's `env`, plus a variant's).
    pub env: BTreeMap<String, String>,
}

impl WarmKey {
    /// The worker `warm` forks from when started with `env`.
    pub fn new(warm: &WarmStart, env: &BTreeMap<String, String>) -> WarmKey {
        let (python, args, dir, fixtures) = warm.parent();
        WarmKey {
            python: python.to_string(),
            args: args.to_vec(),
            dir: dir.to_path_buf(),
            fixtures: fixtures.to_vec(),
            env: env.clone(),
        }
    }

    /// The worker a test forks from, `None` for a test that starts cold.
    pub fn of(test: &TestSpec) -> Option<WarmKey> {
        test.warm.as_ref().map(|warm| WarmKey::new(warm, &test.env))
    }
}

/// Warm workers started by discovery, each already collected, waiting to be taken by the run
/// that discovered them (a worker belongs to one run: never keep this across runs). Workers
/// left here are stopped when it is dropped.
#[derive(Debug, Default)]
pub struct WarmParents {
    started: Mutex<HashMap<WarmKey, WarmParent>>,
}

impl WarmParents {
    /// Takes the worker that `test` forks from, if discovery started it; `None` for a cold
    /// test, a test of a variant that changes the worker's environment or arguments (start one
    /// for it), or a worker already taken.
    pub fn take_for(&self, test: &TestSpec) -> Option<WarmParent> {
        self.take(&WarmKey::of(test)?)
    }

    /// Takes the worker started for `key`.
    pub fn take(&self, key: &WarmKey) -> Option<WarmParent> {
        self.lock().remove(key)
    }

    /// Takes every worker left, for a caller that drives them all.
    pub fn take_all(&self) -> Vec<(WarmKey, WarmParent)> {
        self.lock().drain().collect()
    }

    /// How many workers wait to be taken.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Files away a started worker; a second worker for the same key is stopped instead.
    pub(crate) fn insert(&self, key: WarmKey, parent: WarmParent) {
        let mut started = self.lock();
        if started.contains_key(&key) {
            drop(started);
            if let Err(e) = parent.shutdown() {
                tracing::warn!("stopping a second warm pytest worker: {e}");
            }
            return;
        }
        started.insert(key, parent);
    }

    /// The items of the worker for `key`, if one waits here.
    pub(crate) fn items(&self, key: &WarmKey) -> Option<Vec<String>> {
        self.lock().get(key).map(|p| p.items().to_vec())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WarmKey, WarmParent>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
