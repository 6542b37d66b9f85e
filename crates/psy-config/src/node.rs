//! The nodes of a multi-node scenario (`[[test.node]]`, also under `[[discover]]`): checking
//! them as the manifest is read, and resolving each into a [`NodeSpec`] when its test is
//! expanded (`[defaults]`, then the test, then the variant, then the node's own keys).

use crate::error::ConfigError;
use crate::load::{strings, Checker};
use crate::manifest::{NodeDef, Settings};
use crate::raw::{RawNode, RawReady};
use psy_model::scenario::{DEFAULT_READY_TIMEOUT, MAX_NODE_NAME_LEN};
use psy_model::{NodeSpec, ReadyProbe};
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;

/// Names no node may take, and what they already name: the driver (in messages and logs) and
/// every container's own loopback (in its `/etc/hosts`).
const RESERVED_NAMES: &[(&str, &str)] = &[
    ("driver", "the test's own command"),
    ("localhost", "every container's own loopback"),
];

impl Checker<'_> {
    /// A test's (or discover entry's) nodes, with names unique among them.
    pub(crate) fn nodes(
        &self,
        raw: &[Spanned<RawNode>],
        must_exist: bool,
    ) -> Result<Vec<NodeDef>, ConfigError> {
        let mut nodes: Vec<NodeDef> = Vec::with_capacity(raw.len());
        for node in raw {
            let def = self.node(node, must_exist)?;
            if let Some(first) = nodes.iter().find(|n| n.name == def.name) {
                return Err(self.src.error(
                    Some(node.get_ref().name.span()),
                    format!(
                        "node {:?} is defined twice in this test (first at {})",
                        def.name, first.origin
                    ),
                ));
            }
            nodes.push(def);
        }
        Ok(nodes)
    }

    fn node(&self, raw: &Spanned<RawNode>, must_exist: bool) -> Result<NodeDef, ConfigError> {
        let origin = format!("{}:{}", self.file, self.src.line_of(raw.span().start));
        let node = raw.get_ref();
        if let Some(problem) = bad_node_name(node.name.get_ref()) {
            return Err(self.src.error(Some(node.name.span()), problem));
        }
        let test_only = [
            ("timeout", node.timeout.as_ref().map(Spanned::span)),
            ("retries", node.retries.as_ref().map(Spanned::span)),
            ("labels", node.labels.as_ref().map(Spanned::span)),
        ];
        if let Some((key, span)) = test_only.into_iter().find(|(_, s)| s.is_some()) {
            return Err(self.src.error(
                span,
                format!("not allowed on a node: `{key}` belongs to the test (set it in its [[test]] or [defaults])"),
            ));
        }
        let cwd = match &node.cwd {
            Some(cwd) => Some(self.directory(cwd, must_exist)?),
            None => None,
        };
        Ok(NodeDef {
            name: node.name.get_ref().clone(),
            command: node.command.get_ref().0.clone(),
            cwd,
            env: node.env.0.clone(),
            settings: node.settings(self.dir, self.src)?,
            volumes: self.volumes(&node.volume)?,
            ready: node.ready.as_ref().map(|r| self.ready(r)).transpose()?,
            ready_timeout: node.ready_timeout.map_or(DEFAULT_READY_TIMEOUT, |t| t.0),
            exit_fails_test: node.exit_fails_test,
            origin,
        })
    }

    /// Exactly one of `tcp` (a port, 1 to 65535) and `command` (a non-empty argv).
    fn ready(&self, raw: &Spanned<RawReady>) -> Result<ReadyProbe, ConfigError> {
        let ready = raw.get_ref();
        match (&ready.tcp, &ready.command) {
            (Some(port), None) => match u16::try_from(*port.get_ref()) {
                Ok(p) if p > 0 => Ok(ReadyProbe::Tcp(p)),
                _ => Err(self.src.error(
                    Some(port.span()),
                    format!("invalid port {} (expected 1 to 65535)", port.get_ref()),
                )),
            },
            (None, Some(command)) => {
                let argv = strings(command.get_ref());
                match argv.first() {
                    Some(program) if !program.is_empty() => Ok(ReadyProbe::Command(argv)),
                    _ => Err(self.src.error(
                        Some(command.span()),
                        "empty ready command (expected an argv list such as [\"pg_isready\"])",
                    )),
                }
            }
            (Some(_), Some(command)) => Err(self.src.error(
                Some(command.span()),
                "`tcp` and `command` at once: a node has one ready probe",
            )),
            (None, None) => Err(self.src.error(
                Some(raw.span()),
                "empty: use ready = { tcp = PORT } or ready = { command = [...] }",
            )),
        }
    }
}

/// Why `name` cannot name a node (it becomes a hostname and part of `PSY_NODE_<NAME>_ADDR`).
fn bad_node_name(name: &str) -> Option<String> {
    let well_formed = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !well_formed {
        Some(format!(
            "node name {name:?}: a lower-case letter, then lower-case letters, digits or '-'"
        ))
    } else if name.len() > MAX_NODE_NAME_LEN {
        Some(format!(
            "node name {name:?} is {} characters long (at most {MAX_NODE_NAME_LEN})",
            name.len()
        ))
    } else {
        RESERVED_NAMES
            .iter()
            .find(|(reserved, _)| *reserved == name)
            .map(|(_, what)| format!("node name {name:?} is reserved for {what}"))
    }
}

/// What a node takes from the test it belongs to (after `[defaults]` and the variant).
pub(crate) struct Inherited<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) env: &'a BTreeMap<String, String>,
    pub(crate) cwd: &'a Path,
}

impl NodeDef {
    /// The node resolved under its test: the test's settings and environment with the node's
    /// own on top; its working directory is the test's unless it sets one.
    pub(crate) fn resolve(&self, test: &Inherited<'_>) -> NodeSpec {
        let settings = test.settings.overlay(&self.settings);
        let (_, _, resources) = settings.resolve();
        let mut env = test.env.clone();
        env.extend(self.env.clone());
        NodeSpec {
            name: self.name.clone(),
            command: self.command.clone(),
            cwd: self.cwd.clone().unwrap_or_else(|| test.cwd.to_path_buf()),
            env,
            resources,
            volumes: self.volumes.clone(),
            sandbox: settings.sandbox(),
            ready: self.ready.clone(),
            ready_timeout: self.ready_timeout,
            exit_fails_test: self.exit_fails_test,
            origin: self.origin.clone(),
        }
    }
}
