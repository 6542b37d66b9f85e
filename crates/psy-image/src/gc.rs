//! Removing images: `remove` of one image, and `gc` of images not used since a time; both
//! then delete the layers, blobs and names no remaining image needs. Both hold the store's
//! lock exclusively, so no resolve is halfway through meanwhile.

use crate::index::{self, ImageRecord};
use crate::layout::Layout;
use crate::lock::FileLock;
use crate::store::ImageStore;
use crate::ImageError;
use std::collections::HashSet;
use std::path::Path;
use std::time::SystemTime;

/// What [`ImageStore::gc`] or [`ImageStore::remove`] deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Images removed (with their names).
    pub images: usize,
    /// Unpacked layers deleted.
    pub layers: usize,
    /// Bytes of file content in those layers.
    pub bytes: u64,
}

impl ImageStore {
    /// Removes the image `name_or_digest` names (a name, a `sha256:` digest, or a unique
    /// prefix of at least 4 hex digits) with all its names, then the layers no other image has.
    pub fn remove(&self, name_or_digest: &str) -> Result<GcReport, ImageError> {
        let layout = self.layout();
        let _lock = FileLock::exclusive(&layout.store_lock())?;
        let records = index::all_records(layout)?;
        let digest = match index::read_name(layout, name_or_digest)? {
            Some(digest) => Some(digest),
            None => find_by_digest(&records, name_or_digest),
        };
        let Some(record) = digest.and_then(|d| records.iter().find(|r| r.digest == d)) else {
            return Err(ImageError::UnknownImage {
                name: name_or_digest.to_string(),
                store: layout.root.clone(),
            });
        };
        remove_record(layout, record)?;
        let mut report = prune(layout)?;
        report.images = 1;
        Ok(report)
    }

    /// Removes the images not resolved since `keep_used_since`, then every layer, blob, name
    /// and leftover temporary directory no remaining image needs.
    pub fn gc(&self, keep_used_since: SystemTime) -> Result<GcReport, ImageError> {
        let layout = self.layout();
        let _lock = FileLock::exclusive(&layout.store_lock())?;
        let limit = index::secs(keep_used_since);
        let mut images = 0;
        for record in index::all_records(layout)? {
            if record.used < limit {
                tracing::info!(
                    "gc: removing image {} (last used {} s after the epoch)",
                    record.digest,
                    record.used
                );
                remove_record(layout, &record)?;
                images += 1;
            }
        }
        let mut report = prune(layout)?;
        report.images = images;
        Ok(report)
    }
}

fn find_by_digest(records: &[ImageRecord], wanted: &str) -> Option<String> {
    let hex = wanted.strip_prefix("sha256:").unwrap_or(wanted);
    if hex.len() < 4 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut matches = records
        .iter()
        .filter(|r| r.digest["sha256:".len()..].starts_with(hex));
    let first = matches.next()?;
    matches.next().is_none().then(|| first.digest.clone())
}

fn remove_record(layout: &Layout, record: &ImageRecord) -> Result<(), ImageError> {
    for (name, digest) in index::all_names(layout)? {
        if digest == record.digest {
            remove_file(&layout.name(&name))?;
        }
    }
    remove_file(&layout.image(&record.digest["sha256:".len()..]))
}

/// Deletes what no record refers to. Call with the store lock held exclusively.
fn prune(layout: &Layout) -> Result<GcReport, ImageError> {
    let records = index::all_records(layout)?;
    let digests: HashSet<&str> = records.iter().map(|r| r.digest.as_str()).collect();
    for (name, digest) in index::all_names(layout)? {
        if !digests.contains(digest.as_str()) {
            remove_file(&layout.name(&name))?;
        }
    }
    let hex = |d: &str| d.strip_prefix("sha256:").unwrap_or(d).to_string();
    let layers: HashSet<String> = records
        .iter()
        .flat_map(|r| r.layers.iter().map(|l| hex(&l.diff_id)))
        .collect();
    let blobs: HashSet<String> = records
        .iter()
        .flat_map(|r| [hex(&r.digest), hex(&r.config_digest)])
        .collect();
    let mut report = GcReport::default();
    for entry in index::read_dir(&layout.layers())? {
        let file = entry.file_name().to_string_lossy().into_owned();
        let id = file.strip_suffix(".lock").unwrap_or(&file);
        if layers.contains(id) {
            continue;
        }
        if file.ends_with(".lock") {
            remove_file(&entry.path())?;
            continue;
        }
        report.bytes += crate::layers::read_meta(layout, id)?.map_or(0, |m| m.stats.bytes);
        // Renamed first, so a half-deleted layer never looks unpacked.
        let doomed = layout.tmp().join(format!("removing-{id}"));
        std::fs::rename(entry.path(), &doomed)
            .map_err(|e| ImageError::io("moving the layer to", &doomed, e))?;
        remove_tree(&doomed)?;
        report.layers += 1;
    }
    for entry in index::read_dir(&layout.blobs())? {
        if !blobs.contains(entry.file_name().to_string_lossy().as_ref()) {
            remove_file(&entry.path())?;
        }
    }
    // Leftovers of processes killed while unpacking (none is running: the lock is ours).
    for entry in index::read_dir(&layout.tmp())? {
        remove_tree(&entry.path())?;
    }
    Ok(report)
}

fn remove_file(path: &Path) -> Result<(), ImageError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(ImageError::io("removing", path, e))
        }
        _ => Ok(()),
    }
}

/// Removes a tree, first making its directories writable (a layer unpacked without root
/// keeps the image's read-only directories).
pub(crate) fn remove_tree(path: &Path) -> Result<(), ImageError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ImageError::io("inspecting", path, e)),
    };
    if !meta.is_dir() {
        return remove_file(path);
    }
    if std::fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    make_writable(path);
    std::fs::remove_dir_all(path).map_err(|e| ImageError::io("removing", path, e))
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_writable(&entry.path());
            }
        }
    }
}
