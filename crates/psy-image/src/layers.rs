//! Unpacked layers, shared by every image that has them: each unpacked once, under a lock
//! so concurrent psy processes wait for one another, into a temporary directory verified
//! against both digests and renamed into place.

use crate::digest::{checked_hex, HashingReader};
use crate::layout::{layer_root, Layout};
use crate::lock::FileLock;
use crate::progress::{Progress, ProgressReader};
use crate::unpack::{self, compression, LayerName, LayerStats, UnpackMode};
use crate::ImageError;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::PathBuf;

/// What a layer's `layer.json` records.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LayerMeta {
    pub(crate) diff_id: String,
    /// The blob it was unpacked from (compressed digest) and that blob's size.
    pub(crate) blob_digest: String,
    pub(crate) blob_size: u64,
    pub(crate) stats: LayerStats,
}

/// A layer to make ready.
#[derive(Debug)]
pub(crate) struct LayerJob<'a> {
    pub(crate) image: &'a str,
    pub(crate) diff_id: &'a str,
    /// The blob's digest to check, when the source promises one.
    pub(crate) blob_digest: Option<&'a str>,
    pub(crate) blob_size: Option<u64>,
}

/// A ready layer.
#[derive(Clone, Debug)]
pub(crate) struct ReadyLayer {
    pub(crate) root: PathBuf,
    pub(crate) meta: LayerMeta,
    pub(crate) reused: bool,
}

/// Returns the unpacked layer, unpacking the blob `open` yields unless it already is.
pub(crate) fn ensure<'s>(
    layout: &Layout,
    job: &LayerJob<'_>,
    mode: UnpackMode,
    progress: &dyn Progress,
    open: &dyn Fn() -> Result<Box<dyn Read + Send + 's>, ImageError>,
) -> Result<ReadyLayer, ImageError> {
    let hex = checked_hex(job.image, job.diff_id)?;
    if let Some(ready) = existing(layout, hex)? {
        return Ok(ready);
    }
    let _lock = FileLock::exclusive(&layout.layer_lock(hex))?;
    // Another process may have unpacked it while this one waited.
    if let Some(ready) = existing(layout, hex)? {
        return Ok(ready);
    }
    progress.layer_started(job.diff_id, job.blob_size);
    let tmp = tempfile::Builder::new()
        .prefix(&format!("layer-{}-", &hex[..12]))
        .tempdir_in(layout.tmp())
        .map_err(|e| ImageError::io("creating a temporary directory in", layout.tmp(), e))?;
    let root = layer_root(tmp.path());
    std::fs::create_dir(&root).map_err(|e| ImageError::io("creating", &root, e))?;
    let name = LayerName {
        image: job.image,
        layer: job.diff_id,
    };
    let layer_error = |action: &str, source| ImageError::Layer {
        image: job.image.to_string(),
        layer: job.diff_id.to_string(),
        action: action.to_string(),
        source,
    };
    let mut blob = HashingReader::new(ProgressReader::new(open()?, progress, job.diff_id));
    let (kind, decompressed) =
        compression::decompress(&mut blob).map_err(|e| layer_error("reading the blob", e))?;
    let mut tar = HashingReader::new(decompressed);
    let stats = unpack::unpack(&mut tar, &root, mode, name)?;
    let (diff_id, tar_size) = tar
        .finish()
        .map_err(|e| layer_error("reading the rest of the tar", e))?;
    let (blob_digest, blob_size) = blob
        .finish()
        .map_err(|e| layer_error("reading the rest of the blob", e))?;
    let mismatch = |what: &str, expected: &str, actual: &str| ImageError::DigestMismatch {
        image: job.image.to_string(),
        what: what.to_string(),
        expected: expected.to_string(),
        actual: actual.to_string(),
    };
    if let Some(expected) = job.blob_digest {
        if expected != blob_digest {
            return Err(mismatch(
                &format!("the blob of layer {}", job.diff_id),
                expected,
                &blob_digest,
            ));
        }
    }
    if diff_id != job.diff_id {
        return Err(mismatch(
            "a layer's uncompressed tar (its diff id in the config)",
            job.diff_id,
            &diff_id,
        ));
    }
    let meta = LayerMeta {
        diff_id,
        blob_digest,
        blob_size,
        stats,
    };
    let meta_bytes = serde_json::to_vec_pretty(&meta).map_err(|source| ImageError::Json {
        image: job.image.to_string(),
        what: "a layer's record".into(),
        source,
    })?;
    let meta_path = tmp.path().join("layer.json");
    std::fs::write(&meta_path, meta_bytes).map_err(|e| ImageError::io("writing", &meta_path, e))?;
    let dest = layout.layer(hex);
    std::fs::rename(tmp.path(), &dest)
        .map_err(|e| ImageError::io("renaming the unpacked layer to", &dest, e))?;
    let _ = tmp.keep();
    tracing::debug!(
        "image {}: unpacked layer {} ({kind:?}, {blob_size} bytes, {tar_size} uncompressed) into {}",
        job.image,
        job.diff_id,
        dest.display()
    );
    progress.layer_finished(job.diff_id, false);
    Ok(ReadyLayer {
        root: layer_root(&dest),
        meta,
        reused: false,
    })
}

/// The layer if it is unpacked (its directory exists only once complete).
fn existing(layout: &Layout, hex: &str) -> Result<Option<ReadyLayer>, ImageError> {
    let dir = layout.layer(hex);
    let Some(meta) = read_meta(layout, hex)? else {
        return Ok(None);
    };
    Ok(Some(ReadyLayer {
        root: layer_root(&dir),
        meta,
        reused: true,
    }))
}

/// The `layer.json` of the unpacked layer `hex`, if it is unpacked.
pub(crate) fn read_meta(layout: &Layout, hex: &str) -> Result<Option<LayerMeta>, ImageError> {
    crate::index::read_json(
        &layout.layer(hex).join("layer.json"),
        hex,
        "the layer record",
    )
}
