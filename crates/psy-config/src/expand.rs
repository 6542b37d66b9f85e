//! From manifest to test specs: run discovery, apply defaults, cross with variants, and make
//! sure every test id is unique.

use crate::discover::{self, DiscoverOptions};
use crate::env::{bad_env_name, bad_process_string};
use crate::error::ConfigError;
use crate::manifest::{Manifest, NodeDef, Settings, Variant};
use crate::node::Inherited;
use crate::template;
use psy_model::{TestId, TestSpec};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// A test before variants: the `[[test]]` or discovered test with its own settings.
struct Base {
    name: String,
    command: Vec<String>,
    cwd: PathBuf,
    env: BTreeMap<String, String>,
    settings: Settings,
    tags: Vec<String>,
    origin: String,
    volumes: Vec<psy_model::VolumeSpec>,
    nodes: Vec<NodeDef>,
    group: String,
    adapter: Option<psy_model::Adapter>,
    /// Directories discovery needs writable, beyond the settings' `writable`.
    writable: Vec<PathBuf>,
    /// Directories discovery needs visible read-only.
    readonly: Vec<PathBuf>,
    /// pytest's `warm = true`.
    warm: Option<psy_model::WarmStart>,
}

impl Manifest {
    /// Runs discovery and crosses every test with the variants. `variants`, if not empty, keeps
    /// only the named ones (an unknown name is an error). Without variants each test runs once,
    /// with `variant: None`.
    pub fn expand(&self, variants: &[String]) -> Result<Vec<TestSpec>, ConfigError> {
        self.expand_inner(variants, &DiscoverOptions::default())
    }

    /// [`Self::expand`] with discovery options from the command line (`--run-ignored`), and
    /// `progress` told about each discovery command as it runs.
    pub fn expand_with(
        &self,
        variants: &[String],
        options: &DiscoverOptions,
        progress: std::sync::Arc<dyn crate::DiscoverProgress>,
    ) -> Result<Vec<TestSpec>, ConfigError> {
        discover::progress::with_observer(progress, || self.expand_inner(variants, options))
    }

    fn expand_inner(
        &self,
        variants: &[String],
        options: &DiscoverOptions,
    ) -> Result<Vec<TestSpec>, ConfigError> {
        let selected = self.select_variants(variants)?;
        let manifest_file = self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        let mut bases: Vec<Base> = self
            .tests
            .iter()
            .map(|t| Base {
                name: t.name.clone(),
                command: template::render_argv(&t.command, &[("name", &t.name)]),
                cwd: t.cwd.clone(),
                env: t.env.clone(),
                settings: self.defaults.overlay(&t.settings),
                tags: t.tags.clone(),
                origin: t.origin.clone(),
                volumes: t.volumes.clone(),
                nodes: t.nodes.clone(),
                group: manifest_file.clone(),
                adapter: None,
                writable: Vec::new(),
                readonly: Vec::new(),
                warm: None,
            })
            .collect();
        for entry in &self.discover {
            for found in discover::run(entry, &self.dir, options)? {
                runnable(&found).map_err(|problem| ConfigError::DiscoveredUnrunnable {
                    origin: entry.origin.clone(),
                    test: found.name.clone(),
                    problem,
                })?;
                let mut env = found.env;
                env.extend(entry.env.clone());
                bases.push(Base {
                    name: found.name,
                    command: found.command,
                    cwd: entry
                        .cwd
                        .clone()
                        .or(found.cwd)
                        .unwrap_or_else(|| self.dir.clone()),
                    env,
                    settings: self.defaults.overlay(&entry.settings),
                    tags: entry.tags.clone(),
                    origin: entry.origin.clone(),
                    volumes: Vec::new(),
                    nodes: entry.nodes.clone(),
                    group: found.group.unwrap_or_else(|| entry.origin.clone()),
                    adapter: found.adapter,
                    writable: found.writable,
                    readonly: found.readonly,
                    warm: found.warm,
                });
            }
        }

        let mut specs = Vec::with_capacity(bases.len() * selected.len());
        let mut origins: HashMap<TestId, usize> = HashMap::new();
        for base in &bases {
            for variant in &selected {
                let spec = instantiate(base, *variant);
                if let Some(&first) = origins.get(&spec.id) {
                    let first: &TestSpec = &specs[first];
                    return Err(ConfigError::DuplicateId {
                        id: spec.id.to_string(),
                        first: first.origin.clone(),
                        second: spec.origin,
                    });
                }
                origins.insert(spec.id.clone(), specs.len());
                specs.push(spec);
            }
        }
        Ok(specs)
    }

    /// `[None]` without variants, else the selected variants in manifest order.
    fn select_variants(&self, names: &[String]) -> Result<Vec<Option<&Variant>>, ConfigError> {
        if let Some(unknown) = names
            .iter()
            .find(|n| !self.variants.iter().any(|v| &v.name == *n))
        {
            return Err(ConfigError::UnknownVariant {
                name: unknown.clone(),
                defined: self.variants.iter().map(|v| v.name.clone()).collect(),
            });
        }
        if self.variants.is_empty() {
            return Ok(vec![None]);
        }
        Ok(self
            .variants
            .iter()
            .filter(|v| names.is_empty() || names.contains(&v.name))
            .map(Some)
            .collect())
    }
}

/// What discovery found must be something a process can receive, as the manifest's own
/// tests are checked to be at load.
fn runnable(found: &discover::Found) -> Result<(), String> {
    let strings = std::iter::once(("name", &found.name))
        .chain(found.command.iter().map(|a| ("argument", a)))
        .chain(found.env.values().map(|v| ("environment value", v)));
    for (what, value) in strings {
        if let Some(problem) = bad_process_string(what, value) {
            return Err(problem);
        }
    }
    match found.env.keys().find_map(|k| bad_env_name(k)) {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

fn instantiate(base: &Base, variant: Option<&Variant>) -> TestSpec {
    let mut command = base.command.clone();
    let mut env = base.env.clone();
    let mut settings = base.settings.clone();
    let mut warm = base.warm.clone();
    if let Some(v) = variant {
        command.extend(v.args.iter().cloned());
        // A variant's arguments are pytest options: the warm worker takes them too (and is
        // then a worker of its own), as the cold command does.
        if let Some(warm) = &mut warm {
            warm.args.extend(v.args.iter().cloned());
        }
        env.extend(v.env.clone());
        settings = settings.overlay(&v.settings);
    }
    let (timeout, retries, resources) = settings.resolve();
    let variant_name = variant.map(|v| v.name.clone());
    let mut sandbox = settings.sandbox();
    for dir in &base.writable {
        if !sandbox.writable.contains(dir) {
            sandbox.writable.push(dir.clone());
        }
    }
    sandbox.readonly.extend(base.readonly.iter().cloned());
    let inherited = Inherited {
        settings: &settings,
        env: &env,
        cwd: &base.cwd,
    };
    let nodes = base.nodes.iter().map(|n| n.resolve(&inherited)).collect();
    TestSpec {
        id: TestId::new(&base.name, variant_name.as_deref()),
        name: base.name.clone(),
        variant: variant_name,
        command,
        cwd: base.cwd.clone(),
        env,
        timeout,
        retries,
        resources,
        tags: base.tags.clone(),
        origin: base.origin.clone(),
        volumes: base.volumes.clone(),
        sandbox,
        group: Some(base.group.clone()),
        adapter: base.adapter,
        labels: settings.labels.clone().unwrap_or_default(),
        nodes,
        warm,
    }
}
