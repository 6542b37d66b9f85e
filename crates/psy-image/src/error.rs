//! [`ImageError`]: every way reading, pulling, unpacking or managing an image fails, each
//! naming the image, path or registry URL concerned.

use std::path::PathBuf;

/// What went wrong, with the reference, path or URL it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An `image = "..."` value that is neither an existing path nor a registry reference.
    #[error("image {value:?}: {reason}; {ACCEPTED_FORMS}")]
    InvalidReference {
        /// The value as written.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A file system operation on `path` failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (e.g. "reading", "creating the directory").
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The error of the operating system.
        source: std::io::Error,
    },
    /// A docker-archive or OCI layout that lacks a file or holds one in an unexpected shape.
    #[error("image {image}: {problem}")]
    Malformed {
        /// The image (its reference).
        image: String,
        /// What is wrong with it, naming the file or entry.
        problem: String,
    },
    /// A JSON document (manifest, index, config) that does not parse.
    #[error("image {image}: {what} is not valid JSON of the expected shape: {source}")]
    Json {
        /// The image (its reference).
        image: String,
        /// Which document.
        what: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// Content whose digest is not the one its manifest, config or name promises.
    #[error("image {image}: {what} has digest {actual}, expected {expected}; the image is corrupt or was changed (pull or save it again)")]
    DigestMismatch {
        /// The image (its reference).
        image: String,
        /// Which content (layer, config, manifest).
        what: String,
        /// The digest promised.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// A digest that is not `sha256:` and 64 lower-case hex digits.
    #[error(
        "image {image}: unsupported digest {digest:?} (only sha256:<64 hex digits> is supported)"
    )]
    BadDigest {
        /// The image (its reference).
        image: String,
        /// The digest as found.
        digest: String,
    },
    /// A layer entry that would be written outside the layer's directory.
    #[error("image {image}: layer {layer}: refusing entry {entry:?}: {reason}")]
    UnsafeEntry {
        /// The image (its reference).
        image: String,
        /// The layer's digest.
        layer: String,
        /// The entry's path in the tar.
        entry: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// Reading or writing a layer failed (a truncated or corrupt tar, a full disk).
    #[error("image {image}: layer {layer}: {action}: {source}")]
    Layer {
        /// The image (its reference).
        image: String,
        /// The layer's digest.
        layer: String,
        /// What was being done, naming the entry where there is one.
        action: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A manifest or layer of a media type this store does not read.
    #[error("image {image}: unsupported media type {media_type:?} ({what})")]
    UnsupportedMediaType {
        /// The image (its reference).
        image: String,
        /// What has this media type.
        what: String,
        /// The media type.
        media_type: String,
    },
    /// A manifest list (index) with no image for this machine.
    #[error(
        "image {image}: no image for platform {wanted} in the manifest list (it has: {available})"
    )]
    NoPlatform {
        /// The image (its reference).
        image: String,
        /// This machine's platform, e.g. `linux/amd64`.
        wanted: String,
        /// The platforms the list offers, comma-separated.
        available: String,
    },
    /// An OCI layout without the image named by its `:tag`.
    #[error("image {image}: {problem}")]
    NotInLayout {
        /// The image (its reference).
        image: String,
        /// Which names the layout has instead.
        problem: String,
    },
    /// The HTTP request itself failed (connection refused, TLS, DNS).
    #[error("image {image}: GET {url}: {source}")]
    Http {
        /// The image (its reference).
        image: String,
        /// The URL requested.
        url: String,
        /// The client's error.
        source: Box<ureq::Error>,
    },
    /// The registry answered with an error status.
    #[error("image {image}: GET {url}: the registry answered {status}{}{hint}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Registry {
        /// The image (its reference).
        image: String,
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body (the registry's error JSON).
        body: String,
        /// What to do about it (e.g. credentials for a 401), or empty.
        hint: &'static str,
    },
    /// The registry's authentication challenge could not be met.
    #[error("image {image}: authentication at {url} failed: {problem}")]
    Auth {
        /// The image (its reference).
        image: String,
        /// The URL of the registry or token service.
        url: String,
        /// What failed.
        problem: String,
    },
    /// `remove` of a name or digest the store does not hold.
    #[error("no image {name:?} in the store {} (see `psy image ls`)", store.display())]
    UnknownImage {
        /// The name or digest given.
        name: String,
        /// The store's directory.
        store: PathBuf,
    },
}

/// The forms an image reference may take, for errors about one.
pub const ACCEPTED_FORMS: &str = "an image is a docker-archive file (`docker save`), an OCI layout directory (optionally `DIR:tag`), a root file system directory, or a registry reference `host[:port]/name[:tag|@sha256:...]` whose first component names the host (it contains a '.' or ':' or is `localhost`)";

impl ImageError {
    /// An [`ImageError::Io`] for `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ImageError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// An [`ImageError::Malformed`] for `image`.
    pub(crate) fn malformed(image: impl ToString, problem: impl Into<String>) -> Self {
        ImageError::Malformed {
            image: image.to_string(),
            problem: problem.into(),
        }
    }
}
