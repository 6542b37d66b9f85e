//! The host file: what belongs to this machine, not to a project, so it lives outside the
//! (shared) manifest: its disk IO capacity as `psy calibrate` measured it (`psy run` merges the
//! manifest's `[host] io` over it, key by key), and the image registries it may reach over plain
//! HTTP.
//!
//! ```toml
//! # written by `psy calibrate` on 2026-11-26T10:00:00Z: /dev/vda (254:0), behind /work/project
//! [io]
//! read-bps = "812MiB"
//! write-bps = "420MiB"
//! read-iops = 21000
//! write-iops = 9000
//!
//! [images]
//! # Registries pulled from over plain HTTP (as Docker's `insecure-registries`); loopback
//! # registries always may be.
//! insecure-registries = ["registry.lab:5000"]
//! ```

use crate::error::ConfigError;
use crate::locate::Source;
use crate::raw::RawIoCapacity;
use psy_model::IoCapacity;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The environment variable that names the host file, overriding [`default_path`]'s choice.
pub const HOST_FILE_ENV: &str = "PSY_HOST_FILE";

/// The whole file. Unknown tables and keys are refused (a typo must not silently drop a
/// capacity); a `[network]` table will join `io` here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHostFile {
    io: Option<RawIoCapacity>,
    images: Option<HostImages>,
}

/// What the host file says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFile {
    /// `[io]`: the disk IO this machine gives tests at once.
    pub io: IoCapacity,
    /// `[images]`.
    pub images: HostImages,
}

/// `[images]`: how this machine pulls images.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HostImages {
    /// Registries (`host` or `host:port`) pulled from over plain HTTP.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
}

/// Where the host file is: `$PSY_HOST_FILE` if set, else `/etc/psyduck/host.toml` for root (the
/// machine's own settings), else `$XDG_CONFIG_HOME/psyduck/host.toml` (default
/// `~/.config/psyduck/host.toml`).
pub fn default_path() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(path) = var(HOST_FILE_ENV) {
        return path.into();
    }
    let config_home = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".config")));
    path_for(is_root(), config_home)
}

fn path_for(root: bool, config_home: Option<PathBuf>) -> PathBuf {
    match config_home {
        Some(dir) if !root => dir.join("psyduck/host.toml"),
        // Without a home, the machine-wide file is the only sensible place left.
        _ => PathBuf::from("/etc/psyduck/host.toml"),
    }
}

/// Whether this process runs with an effective uid of 0, from `/proc/self/status` (the `Uid:`
/// line lists real, effective, saved and filesystem uids); false when it cannot be read.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// Reads the host file at `path`: `Ok(None)` when there is none. An error names the file, line,
/// column and key (`io.write-bps`), like the manifest's.
pub fn load(path: &Path) -> Result<Option<HostFile>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::ReadHostFile {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    parse(path, &text).map(Some)
}

/// Parses host file text as if it were the file `path`.
pub fn parse(path: &Path, text: &str) -> Result<HostFile, ConfigError> {
    let src = Source { path, text };
    let raw: RawHostFile = toml::from_str(text).map_err(|e| src.toml_error(&e))?;
    Ok(HostFile {
        io: raw.io.map(|io| io.capacity()).unwrap_or_default(),
        images: raw.images.unwrap_or_default(),
    })
}

/// The host file's text: `comment` as `#` lines, then the `[io]` keys that are set, then
/// `[images]` if it says anything. Sizes are written in the largest whole unit (`"812MiB"`),
/// else as a number of bytes, so [`load`] gives back exactly `file`.
pub fn render(file: &HostFile, comment: &str) -> String {
    let mut out = render_io(&file.io, comment);
    let registries = &file.images.insecure_registries;
    if !registries.is_empty() {
        let quoted: Vec<String> = registries
            .iter()
            .map(|r| toml::Value::String(r.clone()).to_string())
            .collect();
        out.push_str(&format!(
            "\n[images]\ninsecure-registries = [{}]\n",
            quoted.join(", ")
        ));
    }
    out
}

fn render_io(io: &IoCapacity, comment: &str) -> String {
    let mut out = String::new();
    for line in comment.lines() {
        out.push_str(if line.is_empty() { "#" } else { "# " });
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("[io]\n");
    let size = |bytes: u64| {
        // Whole units only ("1751MiB", not "1.71GiB"), so the text is exact.
        [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
            .into_iter()
            .find(|(unit, _)| bytes.is_multiple_of(*unit))
            .map_or_else(
                || bytes.to_string(),
                |(unit, name)| format!("\"{}{name}\"", bytes / unit),
            )
    };
    let keys = [
        ("read-bps", io.read_bps.map(size)),
        ("write-bps", io.write_bps.map(size)),
        ("read-iops", io.read_iops.map(|n| n.to_string())),
        ("write-iops", io.write_iops.map(|n| n.to_string())),
    ];
    for (key, value) in keys {
        if let Some(value) = value {
            out.push_str(&format!("{key} = {value}\n"));
        }
    }
    out
}

/// The IO capacity `psy run` admits against: each key the manifest's `[host] io` sets wins over
/// the host file's (the project knows better, e.g. to leave room for a database on the same disk).
pub fn merge_io(manifest: &IoCapacity, host_file: &IoCapacity) -> IoCapacity {
    IoCapacity {
        read_bps: manifest.read_bps.or(host_file.read_bps),
        write_bps: manifest.write_bps.or(host_file.write_bps),
        read_iops: manifest.read_iops.or(host_file.read_iops),
        write_iops: manifest.write_iops.or(host_file.write_iops),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(io: IoCapacity) -> HostFile {
        HostFile {
            io,
            ..HostFile::default()
        }
    }

    fn io(read_bps: u64, write_bps: u64, read_iops: u64, write_iops: u64) -> IoCapacity {
        IoCapacity {
            read_bps: Some(read_bps),
            write_bps: Some(write_bps),
            read_iops: Some(read_iops),
            write_iops: Some(write_iops),
        }
    }

    #[test]
    fn render_then_load_gives_the_same_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.toml");
        // 812 MiB has an exact unit; 1234567 bytes does not and must stay exact too.
        let measured = io(812 << 20, 1_234_567, 21_000, 9_000);
        let text = render(&file(measured.clone()), "written by a test\n\nsecond line");
        assert!(text.starts_with("# written by a test\n#\n# second line\n[io]\n"));
        assert!(text.contains("read-bps = \"812MiB\"\n"), "{text}");
        assert!(text.contains("write-bps = 1234567\n"), "{text}");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(load(&path).unwrap(), Some(file(measured)));

        let partial = IoCapacity {
            read_bps: Some(2 << 30),
            write_bps: Some(1751 << 20),
            write_iops: Some(5),
            ..IoCapacity::default()
        };
        let text = render(&file(partial.clone()), "");
        assert_eq!(
            text,
            "[io]\nread-bps = \"2GiB\"\nwrite-bps = \"1751MiB\"\nwrite-iops = 5\n"
        );
        std::fs::write(&path, text).unwrap();
        assert_eq!(load(&path).unwrap(), Some(file(partial)));
    }

    #[test]
    fn insecure_registries_read_back_and_survive_a_rewrite() {
        let text =
            "[io]\nread-iops = 7\n\n[images]\ninsecure-registries = [\"lab:5000\", \"10.0.0.2\"]\n";
        let got = parse(Path::new("h.toml"), text).unwrap();
        assert_eq!(got.images.insecure_registries, ["lab:5000", "10.0.0.2"]);
        assert_eq!(render(&got, ""), text);
        let (key, line, problem) = error("[images]\ninsecure-registry = [\"x\"]\n");
        assert_eq!((key.as_str(), line), ("images.insecure-registry", 2));
        assert!(problem.contains("unknown field"), "{problem}");
    }

    #[test]
    fn a_missing_file_is_none_and_sizes_take_both_forms() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(&dir.path().join("nope.toml")).unwrap(), None);
        let got = parse(
            Path::new("h.toml"),
            "[io]\nread-bps = 1048576\nwrite-bps = \"1.5GiB\"\n",
        )
        .unwrap();
        assert_eq!(got.io.read_bps, Some(1 << 20));
        assert_eq!(got.io.write_bps, Some(3 << 29));
        assert_eq!(got.io.read_iops, None);
        assert_eq!(parse(Path::new("h.toml"), "").unwrap(), HostFile::default());
    }

    #[track_caller]
    fn error(text: &str) -> (String, usize, String) {
        match parse(Path::new("/etc/psyduck/host.toml"), text) {
            Err(ConfigError::Invalid { at, key, problem }) => {
                assert_eq!(at.path, Path::new("/etc/psyduck/host.toml"));
                (key, at.line, problem)
            }
            other => panic!("expected an invalid-file error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let (key, line, problem) = error("# c\n[io]\nread-bps = \"8MiB\"\nwrite-bsp = 5\n");
        assert_eq!((key.as_str(), line), ("io.write-bsp", 4));
        assert!(problem.contains("unknown field `write-bsp`"), "{problem}");

        let (key, line, problem) = error("[io]\n\nwrite-bps = \"lots\"\n");
        assert_eq!((key.as_str(), line), ("io.write-bps", 3));
        assert!(problem.contains("\"lots\""), "{problem}");

        let (key, line, problem) = error("[io]\nread-iops = 0\n");
        assert_eq!((key.as_str(), line), ("io.read-iops", 2));
        assert!(!problem.is_empty());

        // A table this version does not know (e.g. from a newer psy) is refused, not ignored.
        let (key, line, problem) = error("[io]\nread-iops = 1\n\n[network]\nbps = 1\n");
        assert_eq!((key.as_str(), line), ("network", 4));
        assert!(problem.contains("unknown field `network`"), "{problem}");

        let err = parse(
            Path::new("h.toml"),
            "[io]\nread-bps = \"8MiB\"\nwrite-bsp = 5\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("h.toml:3:1: io.write-bsp: "), "{err}");
    }

    #[test]
    fn manifest_keys_win_over_the_host_file() {
        let file = io(800, 400, 20_000, 9_000);
        let manifest = IoCapacity {
            write_bps: Some(100),
            read_iops: Some(5_000),
            ..IoCapacity::default()
        };
        assert_eq!(merge_io(&manifest, &file), io(800, 100, 5_000, 9_000));
        assert_eq!(merge_io(&IoCapacity::default(), &file), file);
        assert_eq!(merge_io(&manifest, &IoCapacity::default()), manifest);
    }

    #[test]
    fn root_uses_the_machine_file_and_others_their_config_home() {
        let home = Some(PathBuf::from("/home/u/.config"));
        assert_eq!(
            path_for(false, home.clone()),
            Path::new("/home/u/.config/psyduck/host.toml")
        );
        assert_eq!(path_for(true, home), Path::new("/etc/psyduck/host.toml"));
        assert_eq!(path_for(false, None), Path::new("/etc/psyduck/host.toml"));
    }
}
