//! `docker save` / `podman save` tarballs: `manifest.json`, a config and layer tars, in any
//! order. The archive is indexed once (headers only, seeking past contents); layers are then
//! read in place, in parallel, without copying the archive.

use super::{BlobSource, Fetched, LayerBlob};
use crate::digest::{hex_of, sha256, verify};
use crate::spec::{
    self, ArchiveEntry, Descriptor, Manifest, OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST,
};
use crate::ImageError;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Where each file of the archive's tar is: offset of its content and its size.
#[derive(Debug)]
pub(crate) struct Archive {
    path: PathBuf,
    image: String,
    files: HashMap<String, (u64, u64)>,
    symlinks: HashMap<String, String>,
    /// The layers' (offset, size), bottom first, once [`read`] chose them.
    layers: Vec<(u64, u64)>,
    /// The tags `manifest.json` gives the image (`RepoTags`).
    pub(crate) repo_tags: Vec<String>,
}

/// Reads the archive at `path`: its one image's manifest (synthesised as an OCI manifest of
/// uncompressed layers, whose digest names the image), config and layers.
pub(crate) fn read(path: &Path, image: &str) -> Result<(Fetched, Archive), ImageError> {
    let mut archive = index(path, image)?;
    let entries: Vec<ArchiveEntry> =
        spec::parse(image, "manifest.json", &archive.read_file("manifest.json")?)?;
    let entry = match entries.as_slice() {
        [one] => one.clone(),
        [] => return Err(ImageError::malformed(image, "manifest.json lists no image")),
        many => {
            let tags: Vec<String> = many
                .iter()
                .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
                .collect();
            return Err(ImageError::malformed(
                image,
                format!(
                    "the archive holds {} images ({}); save one image per archive",
                    many.len(),
                    tags.join(", ")
                ),
            ));
        }
    };
    archive.repo_tags = entry.repo_tags.clone().unwrap_or_default();
    let config = archive.read_file(&entry.config)?;
    let config_digest = sha256(&config);
    if let Some(digest) = digest_in_name(&entry.config) {
        verify(
            image,
            &format!("the config {}", entry.config),
            &digest,
            &config,
        )?;
    }
    let config_file: spec::ConfigFile =
        spec::parse(image, &format!("the config {}", entry.config), &config)?;
    if config_file.rootfs.diff_ids.len() != entry.layers.len() {
        return Err(ImageError::malformed(
            image,
            format!(
                "manifest.json lists {} layers but the config {} has {} diff ids",
                entry.layers.len(),
                entry.config,
                config_file.rootfs.diff_ids.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    let mut descriptors = Vec::new();
    for (name, diff_id) in entry.layers.iter().zip(&config_file.rootfs.diff_ids) {
        let (offset, size) = archive.locate(name)?;
        archive.layers.push((offset, size));
        layers.push(LayerBlob {
            digest: digest_in_name(name),
            media_type: OCI_LAYER_TAR.into(),
            size: Some(size),
        });
        descriptors.push(descriptor(OCI_LAYER_TAR, diff_id, size));
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: OCI_MANIFEST.into(),
        config: descriptor(OCI_CONFIG, &config_digest, config.len() as u64),
        layers: descriptors,
    };
    let manifest = serde_json::to_vec(&manifest).map_err(|source| ImageError::Json {
        image: image.to_string(),
        what: "the synthesised manifest".into(),
        source,
    })?;
    let fetched = Fetched {
        digest: sha256(&manifest),
        manifest,
        config_digest,
        config,
        layers,
    };
    Ok((fetched, archive))
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: digest.into(),
        size,
        platform: None,
        annotations: Default::default(),
    }
}

/// `blobs/sha256/<hex>` or `<hex>.json` names carry the content's digest.
fn digest_in_name(name: &str) -> Option<String> {
    let base = name.rsplit('/').next()?;
    let digest = format!("sha256:{}", base.strip_suffix(".json").unwrap_or(base));
    hex_of(&digest).ok()?;
    Some(digest)
}

fn index(path: &Path, image: &str) -> Result<Archive, ImageError> {
    let file =
        File::open(path).map_err(|e| ImageError::io("opening the docker-archive", path, e))?;
    let mut tar = tar::Archive::new(file);
    let mut files = HashMap::new();
    let mut symlinks = HashMap::new();
    let bad = |e: std::io::Error| {
        ImageError::malformed(
            image,
            format!(
                "{} is not a tar archive (a docker-archive is what `docker save` writes): {e}",
                path.display()
            ),
        )
    };
    for entry in tar.entries_with_seek().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let name = normalise(&String::from_utf8_lossy(&entry.path_bytes()));
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                files.insert(name, (entry.raw_file_position(), entry.size()));
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                if let Ok(Some(target)) = entry.link_name() {
                    let target = target.to_string_lossy().into_owned();
                    let resolved = if entry.header().entry_type() == tar::EntryType::Symlink {
                        let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                        normalise(&format!("{dir}/{target}"))
                    } else {
                        normalise(&target)
                    };
                    symlinks.insert(name, resolved);
                }
            }
            _ => {}
        }
    }
    Ok(Archive {
        path: path.to_path_buf(),
        image: image.to_string(),
        files,
        symlinks,
        layers: Vec::new(),
        repo_tags: Vec::new(),
    })
}

/// `a/./b/../c` as `a/c`, without a leading `/` or `./`.
fn normalise(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

impl Archive {
    fn locate(&self, name: &str) -> Result<(u64, u64), ImageError> {
        let mut name = normalise(name);
        // Legacy archives link duplicate layers to one copy.
        for _ in 0..8 {
            if let Some(found) = self.files.get(&name) {
                return Ok(*found);
            }
            match self.symlinks.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        Err(ImageError::malformed(
            &self.image,
            format!(
                "{} has no file {name} (named by manifest.json)",
                self.path.display()
            ),
        ))
    }

    fn open_at(&self, offset: u64, size: u64) -> Result<std::io::Take<File>, ImageError> {
        let mut file = File::open(&self.path)
            .map_err(|e| ImageError::io("opening the docker-archive", &self.path, e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| ImageError::io("seeking in", &self.path, e))?;
        Ok(file.take(size))
    }

    fn read_file(&mut self, name: &str) -> Result<Vec<u8>, ImageError> {
        let (offset, size) = self.locate(name)?;
        let mut bytes = Vec::new();
        self.open_at(offset, size)?
            .read_to_end(&mut bytes)
            .map_err(|e| ImageError::io("reading", self.path.join(name), e))?;
        Ok(bytes)
    }
}

impl BlobSource for Archive {
    fn open_layer(&self, index: usize) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let (offset, size) = self.layers[index];
        Ok(Box::new(self.open_at(offset, size)?))
    }
}
