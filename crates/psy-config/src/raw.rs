//! The manifest exactly as written: serde types mirroring the TOML (kebab-case, unknown keys
//! rejected). [`crate::manifest`] turns them into checked, resolved values.

use crate::env::{Env, ProcessString};
use crate::error::ConfigError;
use crate::locate::Source;
use crate::manifest::{ImageChoice, Settings};
use crate::values::{
    Argv, Cpus, FilesystemSize, ImageValue, IoWeight, Labels, MemorySize, NonZeroSize, Pids, Rate,
    Retries, Size, Timeout, Toggle,
};
use psy_model::{Allowance, CpuPolicy, IoCapacity, IoRequest, NetworkRequest};
use serde::Deserialize;
use std::num::NonZeroU64;
use toml::Spanned;

/// Declares a table that also takes the shared settings keys (timeout, retries, resources).
/// serde cannot combine `flatten` with `deny_unknown_fields`, hence the macro.
macro_rules! with_settings {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub(crate) struct $name {
            $($(#[$fmeta])* pub(crate) $field: $ty,)*
            pub(crate) timeout: Option<Spanned<Timeout>>,
            pub(crate) retries: Option<Spanned<Retries>>,
            pub(crate) cpus: Option<Cpus<true>>,
            pub(crate) memory: Option<MemorySize>,
            pub(crate) pids: Option<Pids>,
            pub(crate) tmp: Option<NonZeroSize>,
            pub(crate) disk: Option<FilesystemSize>,
            pub(crate) io: Option<RawIo>,
            pub(crate) network: Option<RawNetwork>,
            pub(crate) privileged: Option<bool>,
            pub(crate) allow: Option<Vec<Allowance>>,
            pub(crate) writable: Option<Vec<std::path::PathBuf>>,
            pub(crate) image: Option<Spanned<ImageValue>>,
            pub(crate) host: Option<Spanned<bool>>,
            pub(crate) project_path: Option<Spanned<std::path::PathBuf>>,
            pub(crate) labels: Option<Spanned<Labels>>,
        }

        impl $name {
            /// `dir`: the manifest's directory, which relative `writable` and image paths start
            /// from; `src` places errors.
            pub(crate) fn settings(
                &self,
                dir: &std::path::Path,
                src: &Source<'_>,
            ) -> Result<Settings, ConfigError> {
                if let Some(path) = &self.project_path {
                    if !path.get_ref().is_absolute() {
                        return Err(src.error(
                            Some(path.span()),
                            format!(
                                "project-path = {:?}: an absolute path inside the image",
                                path.get_ref()
                            ),
                        ));
                    }
                }
                Ok(Settings {
                    labels: self.labels.as_ref().map(|l| l.get_ref().0.clone()),
                    project_path: self.project_path.as_ref().map(|p| p.get_ref().clone()),
                    image: image_choice(&self.image, &self.host, dir, src)?,
                    timeout: self.timeout.as_ref().map(|t| t.get_ref().0),
                    retries: self.retries.as_ref().map(|r| r.get_ref().0),
                    cpu_millis: self.cpus.map(|c| c.0),
                    memory_bytes: self.memory.map(|m| m.0),
                    pids: self.pids.map(|p| p.0),
                    tmp_bytes: self.tmp.map(|t| t.0),
                    disk_bytes: self.disk.map(|d| d.0),
                    io: self.io.as_ref().map(RawIo::request),
                    network: self.network.as_ref().map(RawNetwork::request),
                    privileged: self.privileged,
                    allow: self.allow.clone(),
                    writable: self
                        .writable
                        .as_ref()
                        .map(|paths| paths.iter().map(|p| dir.join(p)).collect()),
                })
            }
        }
    };
}

/// `image` and `host` of one level: at most one of them, and `host` only as `true`. A value
/// that names an existing path (or starts like one) becomes that path, absolute.
fn image_choice(
    image: &Option<Spanned<ImageValue>>,
    host: &Option<Spanned<bool>>,
    dir: &std::path::Path,
    src: &Source<'_>,
) -> Result<Option<ImageChoice>, ConfigError> {
    match (image, host) {
        (Some(_), Some(host)) => Err(src.error(
            Some(host.span()),
            "`image` and `host` at once: `host = true` runs on the host's root, `image` in an image; keep one",
        )),
        (None, Some(host)) if !*host.get_ref() => Err(src.error(
            Some(host.span()),
            "`host = false`: name an image instead (image = \"...\")",
        )),
        (None, Some(_)) => Ok(Some(ImageChoice::Host)),
        (Some(image), None) => {
            let value = &image.get_ref().0;
            // `components` drops the `.` of `./rootfs`.
            let path: std::path::PathBuf = dir.join(value).components().collect();
            let looks_like_path = value.starts_with(['/', '.']) || path.exists();
            Ok(Some(ImageChoice::Image(match looks_like_path {
                true => path.display().to_string(),
                false => value.clone(),
            })))
        }
        (None, None) => Ok(None),
    }
}

/// `io = { read-bps = "100MiB", write-bps = "50MiB", read-iops = 2000, write-iops = 1000, weight = 100 }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawIo {
    pub(crate) read_bps: Option<NonZeroSize>,
    pub(crate) write_bps: Option<NonZeroSize>,
    pub(crate) read_iops: Option<NonZeroU64>,
    pub(crate) write_iops: Option<NonZeroU64>,
    pub(crate) weight: Option<IoWeight>,
}

impl RawIo {
    fn request(&self) -> IoRequest {
        IoRequest {
            read_bps: self.read_bps.map(|s| s.0),
            write_bps: self.write_bps.map(|s| s.0),
            read_iops: self.read_iops.map(NonZeroU64::get),
            write_iops: self.write_iops.map(NonZeroU64::get),
            weight: self.weight.map(|w| w.0),
        }
    }
}

/// `network = { egress = "100Mbit", ingress = "100Mbit" }` (a test's bandwidth), and the same
/// keys in `[host] network` (what the machine admits at once).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawNetwork {
    pub(crate) egress: Option<Rate>,
    pub(crate) ingress: Option<Rate>,
}

impl RawNetwork {
    pub(crate) fn request(&self) -> NetworkRequest {
        NetworkRequest {
            egress_bps: self.egress.map(|r| r.0),
            ingress_bps: self.ingress.map(|r| r.0),
        }
    }
}

/// `[host] io = { read-bps = "400MiB", write-bps = "200MiB", read-iops = 20000, write-iops = 10000 }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawIoCapacity {
    pub(crate) read_bps: Option<NonZeroSize>,
    pub(crate) write_bps: Option<NonZeroSize>,
    pub(crate) read_iops: Option<NonZeroU64>,
    pub(crate) write_iops: Option<NonZeroU64>,
}

impl RawIoCapacity {
    pub(crate) fn capacity(&self) -> IoCapacity {
        IoCapacity {
            read_bps: self.read_bps.map(|s| s.0),
            write_bps: self.write_bps.map(|s| s.0),
            read_iops: self.read_iops.map(NonZeroU64::get),
            write_iops: self.write_iops.map(NonZeroU64::get),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawManifest {
    pub(crate) defaults: Option<RawDefaults>,
    pub(crate) host: Option<RawHost>,
    pub(crate) report: Option<RawReport>,
    pub(crate) run: Option<RawRun>,
    pub(crate) prepare: Option<RawPrepare>,
    #[serde(default)]
    pub(crate) test: Vec<Spanned<RawTest>>,
    #[serde(default)]
    pub(crate) discover: Vec<Spanned<RawDiscover>>,
    #[serde(default)]
    pub(crate) variant: Vec<Spanned<RawVariant>>,
}

with_settings!(RawDefaults {});

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawHost {
    pub(crate) reserve_cpus: Option<Cpus<false>>,
    pub(crate) reserve_memory: Option<Size<0>>,
    pub(crate) cpu_policy: Option<CpuPolicy>,
    pub(crate) io: Option<RawIoCapacity>,
    pub(crate) network: Option<RawNetwork>,
    pub(crate) rootfs: Option<Spanned<String>>,
    pub(crate) require_guarantees: Option<bool>,
}

/// `[report]`: how `psy run` shows tests' output (the command line wins).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawReport {
    pub(crate) failure_output: Option<psy_model::OutputDisplay>,
    pub(crate) success_output: Option<psy_model::OutputDisplay>,
}

/// `[run]`: defaults of `psy run`'s flags.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawRun {
    pub(crate) fail_fast: Option<bool>,
}

/// `[prepare]`: what an agent runs once per snapshot before its tests (`psy submit`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawPrepare {
    pub(crate) command: Argv,
    pub(crate) timeout: Option<Timeout>,
}

with_settings!(RawTest {
    name: Spanned<String>,
    command: Spanned<Argv>,
    cwd: Option<Spanned<String>>,
    #[serde(default)]
    env: Env,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    volume: Vec<Spanned<RawVolume>>,
    #[serde(default)]
    node: Vec<Spanned<RawNode>>,
});

/// `[[test.volume]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawVolume {
    pub(crate) name: String,
    pub(crate) size: FilesystemSize,
    pub(crate) path: String,
}

with_settings!(RawDiscover {
    glob: Option<Spanned<String>>,
    list: Option<Spanned<Argv>>,
    nextest: Option<Spanned<Toggle<RawNextest>>>,
    pytest: Option<Spanned<Toggle<RawPytest>>>,
    command: Option<Spanned<Argv>>,
    name: Option<Spanned<String>>,
    cwd: Option<Spanned<String>>,
    #[serde(default)]
    env: Env,
    #[serde(default)]
    tags: Vec<String>,
    discover_timeout: Option<Timeout>,
    #[serde(default)]
    node: Vec<Spanned<RawNode>>,
});

with_settings!(
    /// `[[test.node]]` (also under `[[discover]]`): one node of a multi-node scenario. It takes
    /// every settings key so that `timeout`, `retries` and `labels` can be refused by name
    /// (they belong to the test) instead of as unknown keys.
    RawNode {
        name: Spanned<String>,
        command: Spanned<Argv>,
        cwd: Option<Spanned<String>>,
        #[serde(default)]
        env: Env,
        ready: Option<Spanned<RawReady>>,
        ready_timeout: Option<Timeout>,
        #[serde(default)]
        exit_fails_test: bool,
        #[serde(default)]
        volume: Vec<Spanned<RawVolume>>,
    }
);

/// `ready = { tcp = 2379 }` or `ready = { command = ["etcdctl", "endpoint", "health"] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawReady {
    pub(crate) tcp: Option<Spanned<i64>>,
    pub(crate) command: Option<Spanned<Vec<ProcessString>>>,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawNextest {
    #[serde(default)]
    pub(crate) workspace: bool,
    #[serde(default)]
    pub(crate) args: Vec<ProcessString>,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawPytest {
    #[serde(default)]
    pub(crate) args: Vec<ProcessString>,
    #[serde(default)]
    pub(crate) per: Option<Spanned<crate::manifest::PytestPer>>,
    pub(crate) python: Option<ProcessString>,
    pub(crate) warm: Option<Spanned<bool>>,
    pub(crate) warm_fixtures: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) warm_exclude: Option<Spanned<Vec<Spanned<String>>>>,
}

with_settings!(RawVariant {
    name: Spanned<String>,
    #[serde(default)]
    env: Env,
    #[serde(default)]
    args: Vec<ProcessString>,
});

#[cfg(test)]
mod image_tests {
    use crate::ImageChoice;
    use std::path::Path;

    fn parse(text: &str) -> Result<crate::Manifest, String> {
        let dir = Path::new("/project");
        crate::parse(&dir.join("psyduck.toml"), dir, text).map_err(|e| e.to_string())
    }

    #[test]
    fn image_and_host_at_each_level() {
        let m = parse(
            "[defaults]\nimage = \"./rootfs\"\n\
             [[test]]\nname = \"a\"\ncommand = [\"true\"]\n\
             [[test]]\nname = \"b\"\ncommand = [\"true\"]\nhost = true\n\
             [[test]]\nname = \"c\"\ncommand = [\"true\"]\nimage = \"registry.local:5000/base:1\"\n",
        )
        .unwrap();
        assert_eq!(
            m.defaults.image,
            Some(ImageChoice::Image("/project/rootfs".into()))
        );
        let image = |i: usize| m.defaults.overlay(&m.tests[i].settings).sandbox().image;
        assert_eq!(image(0).as_deref(), Some("/project/rootfs"));
        assert_eq!(image(1), None, "host = true wins over the defaults' image");
        assert_eq!(image(2).as_deref(), Some("registry.local:5000/base:1"));
    }

    #[test]
    fn conflicting_or_bad_values_name_the_key() {
        let err =
            parse("[[test]]\nname = \"a\"\ncommand = [\"true\"]\nimage = \"x/y:1\"\nhost = true\n")
                .unwrap_err();
        assert!(
            err.contains("psyduck.toml:5") && err.contains("`image` and `host` at once"),
            "{err}"
        );
        let err =
            parse("[[test]]\nname = \"a\"\ncommand = [\"true\"]\nhost = false\n").unwrap_err();
        assert!(err.contains("host = false"), "{err}");
        let err =
            parse("[[test]]\nname = \"a\"\ncommand = [\"true\"]\nimage = \"a b\"\n").unwrap_err();
        assert!(
            err.contains("psyduck.toml:4") && err.contains("without spaces"),
            "{err}"
        );
    }
}
