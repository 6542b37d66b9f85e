//! The worker's JSON-lines protocol: requests psy writes to its stdin, replies it reads from its
//! stdout (`docs/warm-starts.md` describes every message).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Run one collected item in a fresh fork.
#[derive(Clone, Debug, Serialize)]
pub struct RunRequest {
    /// The pytest node id, one of [`crate::WarmParent::items`].
    pub run: String,
    /// Set as `PSY_TEST_ID` in the child.
    pub test_id: String,
    /// Set as `PSY_ATTEMPT` in the child.
    pub attempt: u32,
    /// Added to the child's environment (after the worker's own).
    pub env: BTreeMap<String, String>,
    /// The child's fd 1 and fd 2 (opened, truncated, by the worker before it forks).
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Where the child writes its [`crate::WarmOutcome`] as JSON.
    pub result: PathBuf,
    /// How the child enters its sandbox, right after the fork.
    pub entry: Entry,
}

/// The sandbox entry the child performs before anything of the test runs (`enter_sandbox` in
/// the worker).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Entry {
    /// Run where the worker runs: no isolation at all (the worker's own tests).
    #[default]
    None,
    /// Become the test of a container psy holds (`psy_sandbox::JoinEntry`); the environment is
    /// then exactly the request's.
    Join(psy_sandbox::JoinEntry),
}

/// What the worker reports once it has collected.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Ready {
    pub(crate) pid: u32,
    pub(crate) items: Vec<String>,
    pub(crate) sources: Vec<crate::Source>,
    pub(crate) threads: Vec<String>,
    pub(crate) python: String,
    pub(crate) pytest: String,
}

/// One line from the worker.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Reply {
    Ready {
        ready: Ready,
    },
    Started {
        started: String,
        pid: u32,
    },
    Refused {
        refused: Option<String>,
        reason: String,
    },
    Exited {
        exited: u32,
        code: Option<i32>,
        signal: Option<i32>,
    },
    Error {
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_by_their_fields() {
        let parse = |line: &str| serde_json::from_str::<Reply>(line).unwrap();
        assert!(matches!(
            parse(r#"{"started": "t.py::a", "pid": 7}"#),
            Reply::Started { pid: 7, .. }
        ));
        assert!(matches!(
            parse(r#"{"exited": 7, "nodeid": "t.py::a", "signal": 9}"#),
            Reply::Exited {
                exited: 7,
                code: None,
                signal: Some(9)
            }
        ));
        assert!(matches!(
            parse(r#"{"refused": null, "reason": "not JSON"}"#),
            Reply::Refused { refused: None, .. }
        ));
        assert!(matches!(parse(r#"{"error": "x"}"#), Reply::Error { .. }));
    }

    #[test]
    fn requests_carry_the_entry_by_kind() {
        let request = RunRequest {
            run: "t.py::a".into(),
            test_id: "t.py::a".into(),
            attempt: 2,
            env: BTreeMap::new(),
            stdout: "o".into(),
            stderr: "e".into(),
            result: "r".into(),
            entry: Entry::None,
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["entry"], serde_json::json!({"kind": "none"}));
        assert_eq!(json["attempt"], 2);
    }
}
