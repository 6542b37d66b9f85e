//! Everything that can go wrong between a `psyduck.toml` and a list of test specs.
//!
//! Every message is one line that names the file and line, the test, or the command at fault.

use std::fmt;
use std::path::PathBuf;

/// A place in the manifest, shown as `path:line:col` (both 1-based, columns in characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.col)
    }
}

/// Why a manifest could not be loaded, expanded or fitted onto this machine.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the host file (written by `psy calibrate`): {source}", path.display())]
    ReadHostFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot read manifest: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The manifest is invalid at `at`; `key` is the key path, e.g. `test[2].memory`
    /// (empty for a syntax error outside any key).
    #[error("{at}: {}{problem}", if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Invalid {
        at: Location,
        key: String,
        problem: String,
    },

    #[error("{origin}: cannot run `{command}`: {source}")]
    DiscoverSpawn {
        origin: String,
        command: String,
        source: std::io::Error,
    },

    /// The discovery command ran longer than its entry's `discover-timeout`; it and every
    /// process it started were killed.
    #[error("{origin}: `{command}` did not finish within {} and was killed (raise `discover-timeout` in this [[discover]] entry if it needs longer)", crate::format_duration(*timeout))]
    DiscoverTimeout {
        origin: String,
        command: String,
        timeout: std::time::Duration,
    },

    /// The whole output is in `output` (see [`ConfigError::output`]), to print line by line.
    #[error("{origin}: `{command}` failed ({status}){}", last_line(stream, output))]
    DiscoverFailed {
        origin: String,
        command: String,
        status: String,
        /// `stderr`, or `stdout` when stderr was blank.
        stream: &'static str,
        /// That stream's lines, as printed.
        output: Vec<String>,
    },

    #[error("{origin}: cannot understand the output of `{command}`: {problem}")]
    DiscoverOutput {
        origin: String,
        command: String,
        problem: String,
    },

    /// Discovery found a test no process could run (a NUL in its name, say).
    #[error("{origin}: found test {test:?}: {problem}")]
    DiscoveredUnrunnable {
        origin: String,
        test: String,
        problem: String,
    },

    /// A directory discovery makes for its tests (nextest: `CARGO_TARGET_TMPDIR`).
    #[error("{origin}: cannot create {what} {}: {source}", path.display())]
    DiscoverDir {
        origin: String,
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{origin}: cannot read {}: {source}", path.display())]
    GlobRead {
        origin: String,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("duplicate test id \"{id}\": defined at {first} and again at {second}")]
    DuplicateId {
        id: String,
        first: String,
        second: String,
    },

    #[error("unknown variant \"{name}\" ({})", if defined.is_empty() { "this manifest defines no variants".to_string() } else { format!("defined: {}", defined.join(", ")) })]
    UnknownVariant { name: String, defined: Vec<String> },

    /// psy is not root and `test` asks, with `key`, for `what` only root can make.
    #[error("test \"{test}\" ({origin}) asks for `{key}` ({what}), which needs root: run psy as root, or remove `{key}` from the test")]
    NeedsRoot {
        test: String,
        origin: String,
        key: &'static str,
        what: &'static str,
    },

    /// `asked` and `available` are rendered for people ("4 CPUs", "3GiB of memory").
    #[error("test \"{test}\" ({origin}) asks for {asked} but this machine has only {available} for tests")]
    DoesNotFit {
        test: String,
        origin: String,
        resource: &'static str,
        asked: String,
        available: String,
    },

    /// One node of a scenario asks for more than the machine has (`asked` and `available`
    /// rendered as for [`ConfigError::DoesNotFit`]).
    #[error("test \"{test}\", node \"{node}\" ({origin}) asks for {asked} but this machine has only {available} for tests")]
    NodeDoesNotFit {
        test: String,
        node: String,
        origin: String,
        asked: String,
        available: String,
    },

    /// A scenario's driver and nodes run at once and together ask for more than the machine
    /// has (boxed: the error type stays small).
    #[error("test \"{}\" ({}): its driver and {} node{} ask for {} together ({}) but this machine has only {} for tests", .0.test, .0.origin, .0.nodes, if .0.nodes == 1 { "" } else { "s" }, .0.asked, .0.parts, .0.available)]
    ScenarioDoesNotFit(Box<ScenarioExcess>),

    /// psy is not root and a node of `test` asks, with `key`, for `what` only root can make.
    #[error("test \"{test}\", node \"{node}\" ({origin}) asks for `{key}` ({what}), which needs root: run psy as root, or remove `{key}` from the node")]
    NodeNeedsRoot {
        test: String,
        node: String,
        origin: String,
        key: &'static str,
        what: &'static str,
    },
}

/// What [`ConfigError::ScenarioDoesNotFit`] reports; amounts rendered as for
/// [`ConfigError::DoesNotFit`].
#[derive(Debug)]
pub struct ScenarioExcess {
    pub test: String,
    pub origin: String,
    /// How many nodes the scenario has.
    pub nodes: usize,
    /// What the driver and the nodes ask for together (`5 CPUs`).
    pub asked: String,
    /// What each part asks (`driver 1 CPU, n1 2 CPUs`).
    pub parts: String,
    pub available: String,
}

/// `; last line of its stderr: ...` for a one-line message, or `; it printed nothing`.
fn last_line(stream: &str, output: &[String]) -> String {
    match output.iter().rev().find(|l| !l.trim().is_empty()) {
        Some(line) => format!("; last line of its {stream}: {}", line.trim()),
        None => "; it printed nothing".to_string(),
    }
}

impl ConfigError {
    /// What a failed discovery command printed, line by line (empty for other errors), and
    /// from which stream (`stderr`, or `stdout` when stderr was blank).
    pub fn output(&self) -> (&'static str, &[String]) {
        match self {
            ConfigError::DiscoverFailed { stream, output, .. } => (stream, output),
            _ => ("", &[]),
        }
    }
}
