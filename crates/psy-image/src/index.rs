//! The store's index of images: one JSON record per manifest digest and one small file per
//! name, each written to a temporary file and renamed into place so readers never see half.

use crate::config::ImageConfig;
use crate::layout::{decode_name, Layout};
use crate::ImageError;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// An image the store holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ImageRecord {
    /// `sha256:` of the manifest.
    pub(crate) digest: String,
    /// `sha256:` of the config.
    pub(crate) config_digest: String,
    pub(crate) config: ImageConfig,
    /// Bottom first.
    pub(crate) layers: Vec<LayerRecord>,
    /// When first stored, in seconds since the epoch.
    pub(crate) created: u64,
    /// When last resolved, in seconds since the epoch (gc keeps recently used images).
    pub(crate) used: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LayerRecord {
    /// `sha256:` of the uncompressed tar (names the unpacked directory).
    pub(crate) diff_id: String,
    /// `sha256:` of the blob as the manifest lists it (compressed or not).
    pub(crate) digest: String,
    pub(crate) media_type: String,
    pub(crate) size: u64,
}

pub(crate) fn now_secs() -> u64 {
    secs(SystemTime::now())
}

pub(crate) fn secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Writes `bytes` to `path` atomically (a temporary file in the same directory, renamed).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| ImageError::io("creating a temporary file in", dir, e))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .map_err(|e| ImageError::io("writing", tmp.path().to_path_buf(), e))?;
    tmp.persist(path)
        .map_err(|e| ImageError::io("renaming into place", path, e.error))?;
    Ok(())
}

pub(crate) fn read_record(layout: &Layout, hex: &str) -> Result<Option<ImageRecord>, ImageError> {
    read_json(&layout.image(hex), hex, "the store's record")
}

/// The JSON document at `path` (a record of the content `hex`), or `None` if there is none.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    hex: &str,
    what: &str,
) -> Result<Option<T>, ImageError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| ImageError::Json {
                image: format!("sha256:{hex}"),
                what: format!("{what} {}", path.display()),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ImageError::io("reading", path, e)),
    }
}

pub(crate) fn write_record(layout: &Layout, record: &ImageRecord) -> Result<(), ImageError> {
    let hex = &record.digest["sha256:".len()..];
    let bytes = serde_json::to_vec_pretty(record).map_err(|source| ImageError::Json {
        image: record.digest.clone(),
        what: "the store's record".into(),
        source,
    })?;
    write_atomic(&layout.image(hex), &bytes)
}

/// Every record of the store.
pub(crate) fn all_records(layout: &Layout) -> Result<Vec<ImageRecord>, ImageError> {
    let mut records = Vec::new();
    for entry in read_dir(&layout.images())? {
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if let Some(record) = read_record(layout, hex)? {
            records.push(record);
        }
    }
    records.sort_by(|a, b| a.digest.cmp(&b.digest));
    Ok(records)
}

/// The digest `name` points to.
pub(crate) fn read_name(layout: &Layout, name: &str) -> Result<Option<String>, ImageError> {
    let path = layout.name(name);
    match std::fs::read_to_string(&path) {
        Ok(digest) => Ok(Some(digest.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ImageError::io("reading", path, e)),
    }
}

pub(crate) fn write_name(layout: &Layout, name: &str, digest: &str) -> Result<(), ImageError> {
    write_atomic(&layout.name(name), digest.as_bytes())
}

/// Every (name, digest) of the store.
pub(crate) fn all_names(layout: &Layout) -> Result<Vec<(String, String)>, ImageError> {
    let mut names = Vec::new();
    for entry in read_dir(&layout.names())? {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        if file.starts_with(".tmp") {
            continue;
        }
        let name = decode_name(file);
        if let Some(digest) = read_name(layout, &name)? {
            names.push((name, digest));
        }
    }
    names.sort();
    Ok(names)
}

pub(crate) fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, ImageError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ImageError::io("listing", dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(ImageError::io("listing", dir, e)),
    }
}
