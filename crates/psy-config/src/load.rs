//! Reading `psyduck.toml` and checking what serde alone cannot: one source per discover
//! entry, placeholders that exist for that source, directories that exist, unique variants.

use crate::env::{bad_process_string, ProcessString};
use crate::error::ConfigError;
use crate::locate::Source;
use crate::manifest::{
    DiscoverDef, DiscoverSource, HostConfig, Manifest, NextestOptions, PrepareConfig,
    PytestOptions, PytestPer, ReportConfig, RunConfig, TestDef, Variant, DEFAULT_DISCOVER_TIMEOUT,
    DEFAULT_PREPARE_TIMEOUT,
};
use crate::raw::{RawDiscover, RawHost, RawManifest, RawPytest, RawTest, RawVariant, RawVolume};
use crate::template;
use crate::values::{Argv, Toggle};
use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Reads, parses and validates a manifest. Discovery does not run yet (see [`Manifest::expand`]).
pub fn load(path: &Path) -> Result<Manifest, ConfigError> {
    let read_err = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    let absolute = std::fs::canonicalize(path).map_err(read_err)?;
    let dir = absolute.parent().unwrap_or(Path::new("/")).to_path_buf();
    parse(path, &dir, &text)
}

/// Parses manifest text as if it were the file `path` in directory `dir` (absolute).
pub fn parse(path: &Path, dir: &Path, text: &str) -> Result<Manifest, ConfigError> {
    let src = Source { path, text };
    let raw: RawManifest = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
    let file = path.file_name().map_or_else(
        || path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let checker = Checker {
        src: &src,
        dir,
        file,
    };
    let host = checker.host(raw.host)?;
    let must_exist = host.rootfs.is_none();
    Ok(Manifest {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        defaults: raw
            .defaults
            .map(|d| d.settings(dir, &src))
            .transpose()?
            .unwrap_or_default(),
        tests: raw
            .test
            .into_iter()
            .map(|t| checker.test(t, must_exist))
            .collect::<Result<_, _>>()?,
        discover: raw
            .discover
            .into_iter()
            .map(|d| checker.discover(d, must_exist))
            .collect::<Result<_, _>>()?,
        variants: checker.variants(raw.variant)?,
        host,
        report: raw
            .report
            .map_or_else(ReportConfig::default, |r| ReportConfig {
                failure_output: r.failure_output,
                success_output: r.success_output,
            }),
        run: RunConfig {
            fail_fast: raw.run.and_then(|r| r.fail_fast).unwrap_or(false),
        },
        prepare: raw.prepare.map(|p| PrepareConfig {
            command: p.command.0,
            timeout: p.timeout.map_or(DEFAULT_PREPARE_TIMEOUT, |t| t.0),
        }),
    })
}

pub(crate) struct Checker<'a> {
    pub(crate) src: &'a Source<'a>,
    pub(crate) dir: &'a Path,
    /// The manifest's file name, for origins (`psyduck.toml:12`).
    pub(crate) file: String,
}

impl Checker<'_> {
    fn host(&self, raw: Option<RawHost>) -> Result<HostConfig, ConfigError> {
        let Some(raw) = raw else {
            return Ok(HostConfig::default());
        };
        let rootfs = match raw.rootfs {
            Some(rootfs) => Some(self.directory(&rootfs, true)?),
            None => None,
        };
        Ok(HostConfig {
            reserve_cpu_millis: raw.reserve_cpus.map_or(0, |c| c.0),
            reserve_memory_bytes: raw.reserve_memory.map_or(0, |m| m.0),
            cpu_policy: raw.cpu_policy.unwrap_or_default(),
            rootfs,
            io: raw.io.as_ref().map(|io| io.capacity()).unwrap_or_default(),
            network: raw
                .network
                .as_ref()
                .map(|n| n.request())
                .unwrap_or_default(),
            require_guarantees: raw.require_guarantees.unwrap_or(false),
        })
    }

    fn test(&self, raw: Spanned<RawTest>, must_exist: bool) -> Result<TestDef, ConfigError> {
        let origin = format!("{}:{}", self.file, self.src.line_of(raw.span().start));
        let raw = raw.into_inner();
        self.non_blank(&raw.name)?;
        self.placeholders(&raw.command, &["name"], "[[test]] commands")?;
        let cwd = match &raw.cwd {
            Some(cwd) => self.directory(cwd, must_exist)?,
            None => self.dir.to_path_buf(),
        };
        let settings = raw.settings(self.dir, self.src)?;
        let volumes = self.volumes(&raw.volume)?;
        let nodes = self.nodes(&raw.node, must_exist)?;
        Ok(TestDef {
            name: raw.name.into_inner(),
            command: raw.command.into_inner().0,
            cwd,
            env: raw.env.0,
            settings,
            tags: raw.tags,
            origin,
            volumes,
            nodes,
        })
    }

    /// A table's `[[...volume]]`s, checked one by one, with names unique among them.
    pub(crate) fn volumes(
        &self,
        raw: &[Spanned<RawVolume>],
    ) -> Result<Vec<psy_model::VolumeSpec>, ConfigError> {
        let volumes = raw
            .iter()
            .map(|v| self.volume(v))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, v) in volumes.iter().enumerate() {
            if volumes[..i].iter().any(|earlier| earlier.name == v.name) {
                return Err(self.src.error(
                    Some(raw[i].span()),
                    format!("two volumes are named {:?}", v.name),
                ));
            }
        }
        Ok(volumes)
    }

    /// A volume's mount point must be absolute and not one of the container's own trees; it
    /// need not exist on the host (psy makes it inside the container).
    fn volume(&self, raw: &Spanned<RawVolume>) -> Result<psy_model::VolumeSpec, ConfigError> {
        let v = raw.get_ref();
        let path = PathBuf::from(&v.path);
        let bad = |problem: &str| self.src.error(Some(raw.span()), problem);
        if let Some(problem) = bad_process_string("volume path", &v.path) {
            return Err(bad(&problem));
        }
        if v.name.is_empty()
            || !v
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad(&format!(
                "volume name {:?}: use letters, digits, '-', '_' or '.'",
                v.name
            )));
        }
        if !path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(bad(&format!(
                "volume path {:?} must be absolute (without '..')",
                v.path
            )));
        }
        // psy mounts these itself: a volume there would hide them.
        if let Some(own) = ["/", "/proc", "/sys", "/dev"]
            .into_iter()
            .find(|own| path == Path::new(own) || (*own != "/" && path.starts_with(own)))
        {
            return Err(bad(&format!(
                "volume path {:?}: {own} belongs to the container itself (psy mounts it); mount the volume elsewhere",
                v.path
            )));
        }
        Ok(psy_model::VolumeSpec {
            name: v.name.clone(),
            size_bytes: v.size.0,
            path,
        })
    }

    fn discover(
        &self,
        raw: Spanned<RawDiscover>,
        must_exist: bool,
    ) -> Result<DiscoverDef, ConfigError> {
        let span = raw.span();
        let raw = raw.into_inner();
        let source = self.source(&raw, span.clone())?;
        let line = self.src.line_of(span.start);
        let origin = match &source {
            DiscoverSource::Glob(pattern) => {
                format!("{}:{line} (discover glob {pattern:?})", self.file)
            }
            DiscoverSource::List(argv) => {
                format!("{}:{line} (discover list {:?})", self.file, argv.join(" "))
            }
            other => format!("{}:{line} (discover {})", self.file, other.kind()),
        };
        let command_vars: &[&str] = match source {
            DiscoverSource::Glob(_) => template::ALL,
            _ => &["name"],
        };
        let what = format!("{} discovery", source.kind());
        match (&source, &raw.command) {
            (DiscoverSource::Glob(_) | DiscoverSource::List(_), None) => {
                return Err(self.src.error_at_key(
                    Some(span),
                    Some("command"),
                    format!("missing: {what} needs a run template such as [\"./run-test\", \"{{name}}\"]"),
                ));
            }
            (DiscoverSource::Nextest(_) | DiscoverSource::Pytest(_), Some(command)) => {
                return Err(self.src.error(
                    Some(command.span()),
                    format!("not allowed: {what} builds each test's command itself"),
                ));
            }
            (_, Some(command)) => self.placeholders(command, command_vars, &what)?,
            _ => {}
        }
        if let Some(name) = &raw.name {
            if !matches!(source, DiscoverSource::Glob(_)) {
                return Err(self.src.error(
                    Some(name.span()),
                    format!("not allowed: {what} names tests itself (name templates are for glob discovery)"),
                ));
            }
            self.non_blank(name)?;
            let allowed = &["path", "stem", "file"];
            if let Some(word) = template::first_unavailable(name.get_ref(), allowed) {
                return Err(self.src.error(
                    Some(name.span()),
                    format!(
                        "placeholder {{{word}}} is not available in test names (use {})",
                        braced(allowed)
                    ),
                ));
            }
        }
        let cwd = match &raw.cwd {
            Some(cwd) => Some(self.directory(cwd, must_exist)?),
            None => None,
        };
        let settings = raw.settings(self.dir, self.src)?;
        let nodes = self.nodes(&raw.node, must_exist)?;
        Ok(DiscoverDef {
            source,
            command: raw.command.map(|c| c.into_inner().0),
            name: raw.name.map(Spanned::into_inner),
            cwd,
            env: raw.env.0,
            settings,
            tags: raw.tags,
            origin,
            discover_timeout: raw
                .discover_timeout
                .map_or(DEFAULT_DISCOVER_TIMEOUT, |t| t.0),
            nodes,
        })
    }

    fn source(
        &self,
        raw: &RawDiscover,
        table: Range<usize>,
    ) -> Result<DiscoverSource, ConfigError> {
        let mut found: Vec<(&str, Range<usize>)> = Vec::new();
        if let Some(glob) = &raw.glob {
            found.push(("glob", glob.span()));
        }
        if let Some(list) = &raw.list {
            found.push(("list", list.span()));
        }
        if let Some(span) = enabled(&raw.nextest) {
            found.push(("nextest", span));
        }
        if let Some(span) = enabled(&raw.pytest) {
            found.push(("pytest", span));
        }
        match found.as_slice() {
            [] => Err(self.src.error(
                Some(table),
                "no test source: set exactly one of glob, list, nextest or pytest",
            )),
            [_] => Ok(self.only_source(raw)?),
            [(first, _), (second, span), ..] => Err(self.src.error(
                Some(span.clone()),
                format!(
                    "several test sources ({first} and {second}): use one [[discover]] per source"
                ),
            )),
        }
    }

    fn only_source(&self, raw: &RawDiscover) -> Result<DiscoverSource, ConfigError> {
        if let Some(glob) = &raw.glob {
            if let Err(e) = glob::Pattern::new(glob.get_ref()) {
                return Err(self.src.error(
                    Some(glob.span()),
                    format!("invalid glob pattern {:?}: {e}", glob.get_ref()),
                ));
            }
            return Ok(DiscoverSource::Glob(glob.get_ref().clone()));
        }
        if let Some(list) = &raw.list {
            return Ok(DiscoverSource::List(list.get_ref().0.clone()));
        }
        if let Some(Toggle::On(n)) = raw.nextest.as_ref().map(Spanned::get_ref) {
            return Ok(DiscoverSource::Nextest(NextestOptions {
                workspace: n.workspace,
                args: strings(&n.args),
            }));
        }
        match raw.pytest.as_ref().map(Spanned::get_ref) {
            Some(Toggle::On(p)) => Ok(DiscoverSource::Pytest(self.pytest(p)?)),
            _ => unreachable!("source() counted exactly one source"),
        }
    }

    /// `pytest = { ... }`: `warm` forks per item, so it needs `per = "test"`; `warm-fixtures`
    /// and `warm-exclude` mean nothing without it.
    fn pytest(&self, p: &RawPytest) -> Result<PytestOptions, ConfigError> {
        let per = p
            .per
            .as_ref()
            .map_or_else(PytestPer::default, |per| *per.get_ref());
        let warm = p.warm.as_ref().is_some_and(|w| *w.get_ref());
        match &p.warm {
            Some(on) if warm && per == PytestPer::File => return Err(self.src.error(
                Some(on.span()),
                "`warm = true` needs `per = \"test\"`: a warm start forks one child per pytest \
                     item, where `per = \"file\"` runs a whole file per test",
            )),
            _ => {}
        }
        let keyed = [
            ("warm-fixtures", &p.warm_fixtures),
            ("warm-exclude", &p.warm_exclude),
        ];
        for (key, value) in keyed {
            match value {
                Some(value) if !warm => {
                    return Err(self.src.error(
                        Some(value.span()),
                        format!("`{key}` needs `warm = true` in the same pytest table"),
                    ))
                }
                _ => {}
            }
        }
        let listed = |value: &Option<Spanned<Vec<Spanned<String>>>>| {
            value
                .as_ref()
                .map_or(&[][..], |v| v.get_ref().as_slice())
                .to_vec()
        };
        let mut warm_fixtures = Vec::new();
        for name in listed(&p.warm_fixtures) {
            let ok = name
                .get_ref()
                .chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_alphabetic() || (i > 0 && c.is_alphanumeric()));
            if !ok || name.get_ref().is_empty() {
                return Err(self.src.error(
                    Some(name.span()),
                    format!("warm fixture {:?} is not a Python name", name.get_ref()),
                ));
            }
            warm_fixtures.push(name.into_inner());
        }
        let mut warm_exclude = Vec::new();
        for pattern in listed(&p.warm_exclude) {
            warm_exclude.push(glob::Pattern::new(pattern.get_ref()).map_err(|e| {
                self.src.error(
                    Some(pattern.span()),
                    format!("invalid glob pattern {:?}: {e}", pattern.get_ref()),
                )
            })?);
        }
        Ok(PytestOptions {
            args: strings(&p.args),
            per,
            python: p
                .python
                .as_ref()
                .map_or_else(|| "python3".to_string(), |p| p.0.clone()),
            warm,
            warm_fixtures,
            warm_exclude,
        })
    }

    fn variants(&self, raw: Vec<Spanned<RawVariant>>) -> Result<Vec<Variant>, ConfigError> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for variant in raw {
            let variant = variant.into_inner();
            self.non_blank(&variant.name)?;
            let name = variant.name.get_ref();
            if name.contains('@') {
                return Err(self.src.error(
                    Some(variant.name.span()),
                    format!(
                        "variant name {name:?} must not contain '@' (test ids are name@variant)"
                    ),
                ));
            }
            if !seen.insert(name.clone()) {
                return Err(self.src.error(
                    Some(variant.name.span()),
                    format!("variant {name:?} is defined twice"),
                ));
            }
            let settings = variant.settings(self.dir, self.src)?;
            out.push(Variant {
                name: name.clone(),
                env: variant.env.0,
                args: strings(&variant.args),
                settings,
            });
        }
        Ok(out)
    }

    /// Test and variant names: not blank, and without NUL (tests get them in `PSY_TEST_ID`).
    fn non_blank(&self, value: &Spanned<String>) -> Result<(), ConfigError> {
        if value.get_ref().trim().is_empty() {
            return Err(self.src.error(Some(value.span()), "must not be empty"));
        }
        if let Some(problem) = bad_process_string("name", value.get_ref()) {
            return Err(self.src.error(Some(value.span()), problem));
        }
        Ok(())
    }

    fn placeholders(
        &self,
        command: &Spanned<Argv>,
        allowed: &[&str],
        what: &str,
    ) -> Result<(), ConfigError> {
        for arg in &command.get_ref().0 {
            if let Some(word) = template::first_unavailable(arg, allowed) {
                return Err(self.src.error(
                    Some(command.span()),
                    format!(
                        "placeholder {{{word}}} is not available in {what} (use {})",
                        braced(allowed)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Resolves a directory relative to the manifest's; checks it exists when tests see the
    /// host's filesystem (with a custom rootfs the host path says nothing).
    pub(crate) fn directory(
        &self,
        value: &Spanned<String>,
        must_exist: bool,
    ) -> Result<PathBuf, ConfigError> {
        if let Some(problem) = bad_process_string("directory", value.get_ref()) {
            return Err(self.src.error(Some(value.span()), problem));
        }
        let path = self.dir.join(value.get_ref());
        if must_exist && !path.is_dir() {
            return Err(self.src.error(
                Some(value.span()),
                format!("directory {} does not exist", path.display()),
            ));
        }
        Ok(path)
    }
}

pub(crate) fn strings(values: &[ProcessString]) -> Vec<String> {
    values.iter().map(|v| v.0.clone()).collect()
}

/// The span of a `nextest`/`pytest` key unless it is absent or `false`.
fn enabled<T>(toggle: &Option<Spanned<Toggle<T>>>) -> Option<Range<usize>> {
    toggle
        .as_ref()
        .filter(|t| matches!(t.get_ref(), Toggle::On(_)))
        .map(Spanned::span)
}

fn braced(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("{{{w}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}
