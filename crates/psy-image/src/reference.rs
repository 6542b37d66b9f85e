//! [`ImageRef`]: what an `image = "..."` value names, detected from the value itself.

use crate::error::ImageError;
use std::fmt;
use std::path::{Path, PathBuf};

/// An image as a manifest or the command line names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ImageRef {
    /// A tarball written by `docker save` or `podman save`.
    DockerArchive(PathBuf),
    /// An OCI image layout directory, with the `org.opencontainers.image.ref.name` to pick
    /// (`None`: the layout's only image).
    OciLayout {
        /// The layout's directory (holding `oci-layout` and `index.json`).
        dir: PathBuf,
        /// The ref name (tag) after `DIR:`.
        reference: Option<String>,
    },
    /// An image in a registry, pulled over the OCI distribution API.
    Registry(RegistryRef),
    /// A plain root file system directory, used as it is.
    RootfsDir(PathBuf),
    /// The host's own root file system (no image).
    Host,
}

/// `host[:port]/repository[:tag|@digest]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegistryRef {
    /// The registry's host, with its port if one was given (`[::1]:5000`, `docker.io`).
    pub host: String,
    /// The repository, e.g. `library/debian`.
    pub repository: String,
    /// The tag or digest to pull.
    pub reference: Reference,
}

/// A tag, or a manifest digest (`sha256:...`), in a registry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    /// A tag such as `bookworm` (`latest` when none is written).
    Tag(String),
    /// A manifest digest `sha256:<hex>`.
    Digest(String),
}

impl ImageRef {
    /// Detects the form of `value`; relative paths resolve against `base_dir` (the manifest's
    /// directory). An existing file is a docker-archive, a directory holding `oci-layout` an
    /// OCI layout (`DIR:tag` picks an image of it), another directory a root file system;
    /// anything else must be a registry reference. The prefixes `docker-archive:`, `oci:`,
    /// `dir:` and `docker://` force a form, as in skopeo; `host` is the host's root.
    pub fn parse(value: &str, base_dir: &Path) -> Result<ImageRef, ImageError> {
        let invalid = |reason: String| ImageError::InvalidReference {
            value: value.to_string(),
            reason,
        };
        if value.is_empty() {
            return Err(invalid("empty".into()));
        }
        if value == "host" {
            return Ok(ImageRef::Host);
        }
        if let Some(rest) = value.strip_prefix("docker://") {
            return parse_registry(rest)
                .map(ImageRef::Registry)
                .map_err(invalid);
        }
        if let Some(path) = value.strip_prefix("docker-archive:") {
            let path = base_dir.join(path);
            return if path.is_file() {
                Ok(ImageRef::DockerArchive(path))
            } else {
                Err(invalid(format!("no such file {}", path.display())))
            };
        }
        if let Some(rest) = value.strip_prefix("oci:") {
            return oci_layout(base_dir, rest).ok_or_else(|| {
                invalid(format!(
                    "{rest} is not an OCI layout directory (no oci-layout file)"
                ))
            });
        }
        if let Some(path) = value.strip_prefix("dir:") {
            let path = base_dir.join(path);
            return if path.is_dir() {
                Ok(ImageRef::RootfsDir(path))
            } else {
                Err(invalid(format!("no such directory {}", path.display())))
            };
        }
        let path = base_dir.join(value);
        if path.is_file() {
            return Ok(ImageRef::DockerArchive(path));
        }
        if path.is_dir() {
            return Ok(oci_layout(base_dir, value).unwrap_or(ImageRef::RootfsDir(path)));
        }
        if let Some(layout) = oci_layout(base_dir, value) {
            return Ok(layout);
        }
        if looks_like_path(value) {
            return Err(invalid(format!(
                "no such file or directory {}",
                path.display()
            )));
        }
        parse_registry(value)
            .map(ImageRef::Registry)
            .map_err(invalid)
    }

    /// The name the store records this image under (see [`fmt::Display`]).
    pub fn name(&self) -> String {
        self.to_string()
    }
}

/// `DIR` or `DIR:tag` naming an OCI layout, if it does.
fn oci_layout(base_dir: &Path, value: &str) -> Option<ImageRef> {
    let is_layout = |dir: &Path| dir.join("oci-layout").is_file();
    let whole = base_dir.join(value);
    if is_layout(&whole) {
        return Some(ImageRef::OciLayout {
            dir: whole,
            reference: None,
        });
    }
    let (dir, tag) = value.rsplit_once(':')?;
    let dir = base_dir.join(dir);
    (!tag.is_empty() && !tag.contains('/') && is_layout(&dir)).then(|| ImageRef::OciLayout {
        dir,
        reference: Some(tag.to_string()),
    })
}

fn looks_like_path(value: &str) -> bool {
    value.starts_with('/')
        || value.starts_with("./")
        || value.starts_with("../")
        || value.starts_with('~')
}

/// Parses `host[:port]/repository[:tag][@sha256:hex]`.
fn parse_registry(value: &str) -> Result<RegistryRef, String> {
    let (rest, digest) = match value.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (value, None),
    };
    let Some((host, path)) = rest.split_once('/') else {
        return Err(
            "not an existing path, and not a registry reference (no '/' after a host)".into(),
        );
    };
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return Err(format!(
            "not an existing path, and {host:?} is not a registry host (write the host first, e.g. docker.io/{rest})"
        ));
    }
    let (repository, tag) = match path.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (path, None),
    };
    if repository.is_empty() || !repository.split('/').all(valid_path_component) {
        return Err(format!(
            "{repository:?} is not a valid repository name (lower-case letters, digits and . _ - separated by /)"
        ));
    }
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return Err(format!("{tag:?} is not a valid tag"));
        }
    }
    let reference = match digest {
        Some(digest) => {
            crate::digest::hex_of(digest)
                .map_err(|_| format!("{digest:?} is not a sha256:<64 hex digits> digest"))?;
            Reference::Digest(digest.to_string())
        }
        None => Reference::Tag(tag.unwrap_or("latest").to_string()),
    };
    Ok(RegistryRef {
        host: host.to_string(),
        repository: repository.to_string(),
        reference,
    })
}

fn valid_path_component(component: &str) -> bool {
    !component.is_empty()
        && component.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && component
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

impl fmt::Display for ImageRef {
    /// A canonical, absolute form that parses back to the same image.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::DockerArchive(path) => write!(f, "docker-archive:{}", path.display()),
            ImageRef::OciLayout {
                dir,
                reference: None,
            } => write!(f, "oci:{}", dir.display()),
            ImageRef::OciLayout {
                dir,
                reference: Some(tag),
            } => write!(f, "oci:{}:{tag}", dir.display()),
            ImageRef::Registry(r) => r.fmt(f),
            ImageRef::RootfsDir(path) => write!(f, "dir:{}", path.display()),
            ImageRef::Host => f.write_str("host"),
        }
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Reference::Tag(tag) => write!(f, "{}/{}:{tag}", self.host, self.repository),
            Reference::Digest(digest) => write!(f, "{}/{}@{digest}", self.host, self.repository),
        }
    }
}

impl RegistryRef {
    /// The same repository at `digest` (what a tag resolved to).
    pub fn with_digest(&self, digest: &str) -> RegistryRef {
        RegistryRef {
            reference: Reference::Digest(digest.to_string()),
            ..self.clone()
        }
    }
}

#[cfg(test)]
#[path = "reference_tests.rs"]
mod tests;
