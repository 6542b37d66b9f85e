//! Unpacking one layer's tar into a directory for overlayfs: whiteouts become overlayfs
//! whiteouts, opaque markers an xattr; modes, owners (as root), symlinks, hardlinks, device
//! nodes (as root) and mtimes are kept; nothing is ever written outside the directory nor
//! through a symlink.

pub(crate) mod compression;
mod fsops;
mod tree;

use fsops::Node;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tar::EntryType;
use tree::Tree;

/// The AUFS/OCI whiteout prefix: `.wh.NAME` deletes `NAME` of the layers below.
const WHITEOUT_PREFIX: &str = ".wh.";
/// The marker making its directory opaque: nothing of the layers below shows through.
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// How a layer is unpacked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UnpackMode {
    /// Root may set owners, create devices and `trusted.*` xattrs; otherwise files belong to
    /// the user, devices are skipped and opaque directories use `user.overlay.opaque`.
    pub(crate) privileged: bool,
}

/// What unpacking produced.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerStats {
    /// Bytes of regular file content written.
    pub bytes: u64,
    /// Entries of the tar (whiteouts and markers included).
    pub entries: u64,
    /// Opaque directories are marked with `user.overlay.opaque`: mount with `userxattr`.
    pub userxattr: bool,
    /// Device nodes left out (unpacked without root).
    pub skipped_devices: u64,
}

/// Names the layer in errors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LayerName<'a> {
    pub(crate) image: &'a str,
    pub(crate) layer: &'a str,
}

/// Unpacks the uncompressed tar `reader` into `dest`, an existing empty directory.
pub(crate) fn unpack(
    reader: impl Read,
    dest: &Path,
    mode: UnpackMode,
    name: LayerName<'_>,
) -> Result<LayerStats, crate::ImageError> {
    let mut unpacker = Unpacker {
        tree: Tree::new(dest),
        mode,
        name,
        stats: LayerStats::default(),
        deferred: Vec::new(),
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| unpacker.layer_error("reading the tar", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| unpacker.layer_error("reading the tar", e))?;
        unpacker.entry(entry)?;
    }
    unpacker.finish()
}

struct Unpacker<'a> {
    tree: Tree,
    mode: UnpackMode,
    name: LayerName<'a>,
    stats: LayerStats,
    /// Directories' modes and mtimes, set last: adding entries changes a directory's mtime,
    /// and a read-only directory would refuse its entries.
    deferred: Vec<(PathBuf, u32, u64)>,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), crate::ImageError> {
        self.stats.entries += 1;
        let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let path = entry
            .path()
            .map_err(|e| self.layer_error(format!("entry {shown:?}"), e))?;
        let rel = self.relative(&path, &shown)?;
        if let Some(name) = rel.file_name().and_then(|n| n.to_str()) {
            if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
                let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
                return self.whiteout(&parent, target, &shown);
            }
        }
        let header = entry.header().clone();
        let meta = Meta {
            mode: header.mode().unwrap_or(0o644),
            uid: header.uid().unwrap_or(0),
            gid: header.gid().unwrap_or(0),
            mtime: header.mtime().unwrap_or(0),
        };
        match kind {
            EntryType::Directory => self.directory(&rel, &meta, &shown),
            EntryType::Regular | EntryType::Continuous => {
                let xattrs = pax_xattrs(&mut entry);
                self.file(&rel, &meta, &mut entry, &shown)?;
                self.xattrs(&rel, &xattrs, &shown)
            }
            EntryType::Symlink => {
                let target = entry.link_name().ok().flatten().map(|t| t.into_owned());
                let target = target
                    .ok_or_else(|| self.unsafe_entry(&shown, "a symlink without a target"))?;
                self.symlink(&rel, &target, &meta, &shown)
            }
            EntryType::Link => {
                let target = entry.link_name().ok().flatten().map(|t| t.into_owned());
                let target = target
                    .ok_or_else(|| self.unsafe_entry(&shown, "a hardlink without a target"))?;
                self.hardlink(&rel, &target, &shown)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let node = match kind {
                    EntryType::Char => Node::Char,
                    EntryType::Block => Node::Block,
                    _ => Node::Fifo,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                self.node(&rel, node, major, minor, &meta, &shown)
            }
            _ => {
                tracing::warn!(
                    "image {}: layer {}: skipping entry {shown:?} of unsupported tar type {kind:?}",
                    self.name.image,
                    self.name.layer
                );
                Ok(())
            }
        }
    }

    /// The entry's path relative to the layer: leading `/` and `.` dropped, `..` refused.
    fn relative(&self, path: &Path, shown: &str) -> Result<PathBuf, crate::ImageError> {
        let mut rel = PathBuf::new();
        for component in path.components() {
            match component {
                std::path::Component::Normal(part) => rel.push(part),
                std::path::Component::ParentDir => {
                    return Err(self.unsafe_entry(shown, "its path contains '..'"))
                }
                _ => {}
            }
        }
        Ok(rel)
    }

    fn whiteout(
        &mut self,
        parent: &Path,
        target: &str,
        shown: &str,
    ) -> Result<(), crate::ImageError> {
        self.tree
            .ensure_dir(parent)
            .map_err(|e| self.tree_error(e, shown))?;
        if OPAQUE_MARKER.strip_prefix(WHITEOUT_PREFIX) == Some(target) {
            let (name, value) = if self.mode.privileged {
                ("trusted.overlay.opaque", b"y")
            } else {
                self.stats.userxattr = true;
                ("user.overlay.opaque", b"y")
            };
            let dir = self.tree.abs(parent);
            return fsops::set_xattr(&dir, name, value).map_err(|e| {
                self.layer_error(format!("marking {} opaque ({name})", dir.display()), e)
            });
        }
        if target.starts_with(WHITEOUT_PREFIX) || target.is_empty() {
            // AUFS's own metadata (.wh..wh.plnk, .wh..wh.aufs): not part of the image.
            return Ok(());
        }
        let rel = parent.join(target);
        self.tree
            .clear(&rel)
            .map_err(|e| self.tree_error(e, shown))?;
        let abs = self.tree.abs(&rel);
        fsops::whiteout(&abs).map_err(|e| {
            self.layer_error(
                format!("creating the whiteout {} (a character device 0:0; Linux < 5.8 allows it only to root)", abs.display()),
                e,
            )
        })
    }

    fn directory(&mut self, rel: &Path, meta: &Meta, shown: &str) -> Result<(), crate::ImageError> {
        if !rel.as_os_str().is_empty() {
            if let Some(parent) = rel.parent() {
                self.tree
                    .ensure_dir(parent)
                    .map_err(|e| self.tree_error(e, shown))?;
            }
            self.tree
                .make_dir(rel)
                .map_err(|e| self.tree_error(e, shown))?;
        }
        let abs = self.tree.abs(rel);
        self.owner(&abs, meta, shown)?;
        self.deferred
            .push((rel.to_path_buf(), meta.mode, meta.mtime));
        Ok(())
    }

    fn file(
        &mut self,
        rel: &Path,
        meta: &Meta,
        content: &mut impl Read,
        shown: &str,
    ) -> Result<(), crate::ImageError> {
        self.prepare(rel, shown)?;
        let abs = self.tree.abs(rel);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc_o_nofollow())
            .open(&abs)
            .map_err(|e| self.layer_error(format!("creating {}", abs.display()), e))?;
        self.stats.bytes += io::copy(content, &mut file)
            .map_err(|e| self.layer_error(format!("writing {}", abs.display()), e))?;
        drop(file);
        self.owner(&abs, meta, shown)?;
        self.permissions(&abs, meta.mode)?;
        fsops::set_mtime(&abs, meta.mtime)
            .map_err(|e| self.layer_error(format!("setting the mtime of {}", abs.display()), e))
    }

    fn symlink(
        &mut self,
        rel: &Path,
        target: &Path,
        meta: &Meta,
        shown: &str,
    ) -> Result<(), crate::ImageError> {
        self.prepare(rel, shown)?;
        let abs = self.tree.abs(rel);
        std::os::unix::fs::symlink(target, &abs)
            .map_err(|e| self.layer_error(format!("creating the symlink {}", abs.display()), e))?;
        self.owner(&abs, meta, shown)?;
        fsops::set_mtime(&abs, meta.mtime)
            .map_err(|e| self.layer_error(format!("setting the mtime of {}", abs.display()), e))
    }

    fn hardlink(
        &mut self,
        rel: &Path,
        target: &Path,
        shown: &str,
    ) -> Result<(), crate::ImageError> {
        let target_rel = self.relative(target, shown)?;
        if let Some(parent) = target_rel.parent() {
            self.tree
                .ensure_dir(parent)
                .map_err(|e| self.tree_error(e, shown))?;
        }
        let target_abs = self.tree.abs(&target_rel);
        match fs::symlink_metadata(&target_abs) {
            Ok(m) if !m.is_dir() => {}
            _ => {
                return Err(self.unsafe_entry(
                    shown,
                    "a hardlink to something not in this layer (or to a directory)",
                ))
            }
        }
        self.prepare(rel, shown)?;
        let abs = self.tree.abs(rel);
        fs::hard_link(&target_abs, &abs).map_err(|e| {
            self.layer_error(
                format!("linking {} to {}", abs.display(), target_abs.display()),
                e,
            )
        })
    }

    fn node(
        &mut self,
        rel: &Path,
        node: Node,
        major: u32,
        minor: u32,
        meta: &Meta,
        shown: &str,
    ) -> Result<(), crate::ImageError> {
        if !self.mode.privileged && !matches!(node, Node::Fifo) {
            self.stats.skipped_devices += 1;
            tracing::debug!(
                "image {}: layer {}: skipping device {shown:?} (not root)",
                self.name.image,
                self.name.layer
            );
            return Ok(());
        }
        self.prepare(rel, shown)?;
        let abs = self.tree.abs(rel);
        fsops::mknod(&abs, node, meta.mode, major, minor)
            .map_err(|e| self.layer_error(format!("creating the device {}", abs.display()), e))?;
        self.owner(&abs, meta, shown)?;
        self.permissions(&abs, meta.mode)?;
        fsops::set_mtime(&abs, meta.mtime)
            .map_err(|e| self.layer_error(format!("setting the mtime of {}", abs.display()), e))
    }

    /// Makes room for a new non-directory at `rel`.
    fn prepare(&mut self, rel: &Path, shown: &str) -> Result<(), crate::ImageError> {
        if rel.as_os_str().is_empty() {
            return Err(self.unsafe_entry(shown, "it would replace the layer's root directory"));
        }
        self.tree.clear(rel).map_err(|e| self.tree_error(e, shown))
    }

    fn owner(&self, abs: &Path, meta: &Meta, _shown: &str) -> Result<(), crate::ImageError> {
        if !self.mode.privileged {
            return Ok(());
        }
        fsops::lchown(abs, meta.uid, meta.gid)
            .map_err(|e| self.layer_error(format!("setting the owner of {}", abs.display()), e))
    }

    fn permissions(&self, abs: &Path, mode: u32) -> Result<(), crate::ImageError> {
        fs::set_permissions(abs, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| self.layer_error(format!("setting the mode of {}", abs.display()), e))
    }

    /// Extended attributes recorded in the entry (`SCHILY.xattr.*`), such as file
    /// capabilities; without root only `user.*` ones can be set.
    fn xattrs(
        &self,
        rel: &Path,
        xattrs: &[(String, Vec<u8>)],
        _shown: &str,
    ) -> Result<(), crate::ImageError> {
        let abs = self.tree.abs(rel);
        for (name, value) in xattrs {
            if !self.mode.privileged && !name.starts_with("user.") {
                continue;
            }
            fsops::set_xattr(&abs, name, value).map_err(|e| {
                self.layer_error(format!("setting the xattr {name} of {}", abs.display()), e)
            })?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<LayerStats, crate::ImageError> {
        // Deepest first, so setting a parent's mtime is the last change to it.
        self.deferred
            .sort_by_key(|(rel, _, _)| std::cmp::Reverse(rel.components().count()));
        for (rel, mode, mtime) in std::mem::take(&mut self.deferred) {
            let abs = self.tree.abs(&rel);
            self.permissions(&abs, mode)?;
            fsops::set_mtime(&abs, mtime).map_err(|e| {
                self.layer_error(format!("setting the mtime of {}", abs.display()), e)
            })?;
        }
        Ok(self.stats)
    }

    fn unsafe_entry(&self, entry: &str, reason: &'static str) -> crate::ImageError {
        crate::ImageError::UnsafeEntry {
            image: self.name.image.to_string(),
            layer: self.name.layer.to_string(),
            entry: entry.to_string(),
            reason,
        }
    }

    fn layer_error(&self, action: impl Into<String>, source: io::Error) -> crate::ImageError {
        crate::ImageError::Layer {
            image: self.name.image.to_string(),
            layer: self.name.layer.to_string(),
            action: action.into(),
            source,
        }
    }

    fn tree_error(&self, error: tree::TreeError, shown: &str) -> crate::ImageError {
        match error {
            tree::TreeError::Unsafe(reason) => self.unsafe_entry(shown, reason),
            tree::TreeError::Io(path, e) => {
                self.layer_error(format!("entry {shown:?}: {}", path.display()), e)
            }
        }
    }
}

/// An entry's mode, owner and mtime.
#[derive(Debug)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(String, Vec<u8>)> {
    let Ok(Some(extensions)) = entry.pax_extensions() else {
        return Vec::new();
    };
    extensions
        .flatten()
        .filter_map(|ext| {
            let key = ext.key().ok()?;
            let name = key.strip_prefix("SCHILY.xattr.")?;
            Some((name.to_string(), ext.value_bytes().to_vec()))
        })
        .collect()
}

const fn libc_o_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
