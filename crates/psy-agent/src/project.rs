//! From a lease's spec to the test to run: the project (a directory on this machine, or a
//! snapshot made into one), its manifest expanded as `psy list` expands it, and the test of
//! the lease's id. Expansions are kept per server run, so the jobs of one run expand their
//! manifest (discovery included) once on each agent, and a later run sees the project as it
//! is then.

use psy_config::{DiscoverOptions, DiscoverProgress};
use psy_fleet::wire::Lease;
use psy_fleet::{JobSpec, ProjectSource, SnapshotMaterialiser};
use psy_model::TestSpec;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How many expansions are kept (one per server run and manifest, most recent first).
const KEPT: usize = 16;

/// A test to run and its project's directory.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) test: TestSpec,
    pub(crate) project_dir: PathBuf,
}

/// One manifest, expanded.
#[derive(Debug)]
struct Expanded {
    project_dir: PathBuf,
    manifest: PathBuf,
    tests: HashMap<String, TestSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    run_id: i64,
    source: ProjectSource,
    manifest: String,
}

/// The projects of the leases this agent got, expanded.
#[derive(Debug)]
pub(crate) struct Projects {
    agent: String,
    /// Where snapshots are made into directories (the agent's work dir).
    snapshots: PathBuf,
    materialiser: Option<Arc<dyn SnapshotMaterialiser>>,
    /// Most recent first; an expansion that failed is kept as its message.
    expanded: Vec<(Key, Arc<Result<Expanded, String>>)>,
}

impl Projects {
    pub(crate) fn new(
        agent: &str,
        snapshots: PathBuf,
        materialiser: Option<Arc<dyn SnapshotMaterialiser>>,
    ) -> Projects {
        Projects {
            agent: agent.to_string(),
            snapshots,
            materialiser,
            expanded: Vec::new(),
        }
    }

    /// The test `lease` runs, or why this agent cannot run it (one line naming the test, its
    /// run and this agent): the error result to report.
    pub(crate) fn test_of(&mut self, lease: &Lease) -> Result<Found, String> {
        let (test, run, agent) = (&lease.test_id, lease.run_id, &self.agent);
        let spec: JobSpec = serde_json::from_value(lease.spec.clone()).map_err(|e| {
            format!(
                "test {test:?} of run {run}: its spec is not a psy job spec ({e}); agent \
                 {agent:?} cannot run it"
            )
        })?;
        let key = Key {
            run_id: run,
            source: spec.source.clone(),
            manifest: spec.manifest.clone(),
        };
        let expanded = match self.expanded.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                let entry = self.expanded.remove(i);
                let expanded = Arc::clone(&entry.1);
                self.expanded.insert(0, entry);
                expanded
            }
            None => {
                let expanded = Arc::new(self.expand(&spec, lease));
                self.expanded.insert(0, (key, Arc::clone(&expanded)));
                self.expanded.truncate(KEPT);
                expanded
            }
        };
        let expanded = expanded.as_ref().as_ref().map_err(Clone::clone)?;
        let Some(found) = expanded.tests.get(&spec.test) else {
            return Err(format!(
                "test {:?} of run {run} is not among the {} tests agent {agent:?} finds in {} \
                 (`psy list -m {}` shows them)",
                spec.test,
                expanded.tests.len(),
                expanded.manifest.display(),
                expanded.manifest.display(),
            ));
        };
        Ok(Found {
            test: found.clone(),
            project_dir: expanded.project_dir.clone(),
        })
    }

    /// Loads and expands the manifest of `spec`.
    fn expand(&self, spec: &JobSpec, lease: &Lease) -> Result<Expanded, String> {
        let (test, run, agent) = (&lease.test_id, lease.run_id, &self.agent);
        let root = match &spec.source {
            ProjectSource::Directory { path } => {
                let dir = PathBuf::from(path);
                if !dir.is_absolute() {
                    return Err(format!(
                        "test {test:?} of run {run}: its project directory {path:?} is not an \
                         absolute path"
                    ));
                }
                dir
            }
            ProjectSource::Snapshot { digest } => match &self.materialiser {
                None => {
                    return Err(format!(
                        "test {test:?} of run {run} comes from snapshot {digest}: snapshots \
                         are not supported by psy agent {agent:?} yet"
                    ))
                }
                Some(m) => m
                    .materialise(digest, &spec.manifest, &self.snapshots)
                    .map_err(|e| {
                        format!(
                            "test {test:?} of run {run}: agent {agent:?} could not materialise \
                         snapshot {digest}: {e}"
                        )
                    })?,
            },
        };
        let manifest = if Path::new(&spec.manifest).is_absolute() {
            PathBuf::from(&spec.manifest)
        } else {
            root.join(&spec.manifest)
        };
        let loaded = psy_config::load(&manifest).map_err(|e| {
            format!("test {test:?} of run {run}: agent {agent:?} cannot load its manifest: {e}")
        })?;
        let tests = loaded
            .expand_with(&[], &DiscoverOptions::default(), Arc::new(Discovery))
            .map_err(|e| {
                format!(
                    "test {test:?} of run {run}: agent {agent:?} cannot expand {}: {e}",
                    manifest.display()
                )
            })?;
        tracing::info!(
            run,
            manifest = %manifest.display(),
            tests = tests.len(),
            "expanded the manifest of a run"
        );
        Ok(Expanded {
            project_dir: loaded.dir.clone(),
            manifest,
            tests: tests.into_iter().map(|t| (t.id.to_string(), t)).collect(),
        })
    }
}

/// Discovery commands, in the agent's log.
struct Discovery;

impl DiscoverProgress for Discovery {
    fn started(&self, origin: &str, command: &str) {
        tracing::debug!(origin, command, "discovering tests");
    }

    fn line(&self, origin: &str, line: &str) {
        tracing::debug!(origin, line, "discovery");
    }

    fn finished(&self, origin: &str, ok: bool) {
        tracing::debug!(origin, ok, "discovery finished");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(spec: serde_json::Value, run_id: i64) -> Lease {
        Lease {
            lease_id: 1,
            fencing_token: 1,
            job_id: 1,
            run_id,
            test_id: spec["test"].as_str().unwrap_or("?").to_string(),
            attempt: 1,
            spec,
            expires_at: "2030-01-01T00:00:00.000Z".into(),
        }
    }

    fn directory(dir: &Path, test: &str) -> serde_json::Value {
        serde_json::json!({"source": {"directory": {"path": dir}}, "manifest": "psyduck.toml",
                           "test": test})
    }

    #[test]
    fn tests_are_found_by_id_in_their_expanded_manifest_once_per_run() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("psyduck.toml");
        std::fs::write(
            &manifest,
            "[[test]]\nname = \"a\"\ncommand = [\"true\"]\n[[test]]\nname = \"b\"\ncommand = [\"false\"]\n",
        )
        .unwrap();
        let mut projects = Projects::new("rack-1", dir.path().join("snapshots"), None);
        let found = projects
            .test_of(&lease(directory(dir.path(), "b"), 1))
            .unwrap();
        assert_eq!(found.test.command, ["false"]);
        assert_eq!(
            found.project_dir,
            std::fs::canonicalize(dir.path()).unwrap()
        );

        // The same run's jobs use the expansion they had; another run expands again.
        std::fs::write(&manifest, "[[test]]\nname = \"c\"\ncommand = [\"true\"]\n").unwrap();
        assert!(projects
            .test_of(&lease(directory(dir.path(), "a"), 1))
            .is_ok());
        assert!(projects
            .test_of(&lease(directory(dir.path(), "c"), 2))
            .is_ok());

        let unknown = projects
            .test_of(&lease(directory(dir.path(), "zz"), 2))
            .unwrap_err();
        assert!(
            unknown.contains("\"zz\"") && unknown.contains("rack-1") && unknown.contains("1 tests"),
            "{unknown}"
        );
    }

    #[test]
    fn what_cannot_run_here_says_why() {
        let mut projects = Projects::new("rack-1", PathBuf::from("/nonexistent"), None);
        let snapshot = serde_json::json!({"source": {"snapshot": {"digest": "sha256:ab"}},
                                          "manifest": "psyduck.toml", "test": "t"});
        let err = projects.test_of(&lease(snapshot, 3)).unwrap_err();
        assert!(
            err.contains("sha256:ab") && err.contains("not supported") && err.contains("rack-1"),
            "{err}"
        );
        let err = projects
            .test_of(&lease(serde_json::json!({"test": "t"}), 3))
            .unwrap_err();
        assert!(err.contains("not a psy job spec"), "{err}");
        let err = projects
            .test_of(&lease(directory(Path::new("/nonexistent/p"), "t"), 3))
            .unwrap_err();
        assert!(err.contains("cannot load its manifest"), "{err}");
    }
}
