//! [`JobSpec`]: what a queued job's `spec` holds, so that any agent can run it: where the
//! project comes from, which manifest, which test.
//!
//! The submitter expands the manifest (discovery included) to choose the tests and their
//! resources; the agent loads the same manifest from the same source (after the manifest's
//! `[prepare]` command) and runs the test of that id, so the test's command, limits and
//! environment are the manifest's as the agent's copy of the project says.

use serde::{Deserialize, Serialize};

/// The `spec` of one job on the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub source: ProjectSource,
    /// The manifest's path, relative to the project's root (`psyduck.toml`).
    pub manifest: String,
    /// The test's id, as `psy list` prints it.
    pub test: String,
}

/// Where an agent finds the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ProjectSource {
    /// A snapshot uploaded by `psy submit`, by its digest (`sha256:...`): the agent
    /// materialises it once in its work dir.
    Snapshot { digest: String },
    /// A directory already on the agent's machine (a shared checkout; tests and benchmarks).
    Directory { path: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_read_back_and_refuse_unknown_keys() {
        let spec = JobSpec {
            source: ProjectSource::Snapshot {
                digest: "sha256:ab".into(),
            },
            manifest: "psyduck.toml".into(),
            test: "unit::a".into(),
        };
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"source": {"snapshot": {"digest": "sha256:ab"}},
                               "manifest": "psyduck.toml", "test": "unit::a"})
        );
        assert_eq!(serde_json::from_value::<JobSpec>(json).unwrap(), spec);
        assert!(serde_json::from_value::<JobSpec>(serde_json::json!({
            "source": {"directory": {"path": "/p"}}, "manifest": "m", "test": "t", "x": 1
        }))
        .is_err());
    }
}
