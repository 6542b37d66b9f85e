//! OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/...`), as `skopeo copy ...
//! oci:DIR`, buildah and umoci write them; `DIR:tag` picks the image whose
//! `org.opencontainers.image.ref.name` is `tag`.

use super::{manifest, BlobSource, Fetched};
use crate::digest::checked_hex;
use crate::spec::{self, Descriptor, Index, REF_NAME};
use crate::ImageError;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The blobs of a layout, for the layers of the image [`read`] chose.
#[derive(Debug)]
pub(crate) struct Layout {
    dir: PathBuf,
    image: String,
    layers: Vec<String>,
}

/// Reads the image `reference` names in the layout `dir` (with none: its only image).
pub(crate) fn read(
    dir: &Path,
    reference: Option<&str>,
    image: &str,
) -> Result<(Fetched, Layout), ImageError> {
    let mut layout = Layout {
        dir: dir.to_path_buf(),
        image: image.to_string(),
        layers: Vec::new(),
    };
    let index_path = dir.join("index.json");
    let bytes = std::fs::read(&index_path)
        .map_err(|e| ImageError::io("reading the OCI layout's index", &index_path, e))?;
    let index: Index = spec::parse(image, "index.json", &bytes)?;
    let chosen = choose(&index.manifests, reference, image)?;
    let top = layout.blob(&chosen)?;
    crate::digest::verify(image, "the manifest", &chosen.digest, &top)?;
    let fetched = manifest::resolve(image, top, &|d| layout.blob(d))?;
    layout.layers = fetched
        .layers
        .iter()
        .filter_map(|l| l.digest.clone())
        .collect();
    Ok((fetched, layout))
}

fn choose(
    manifests: &[Descriptor],
    reference: Option<&str>,
    image: &str,
) -> Result<Descriptor, ImageError> {
    let names: Vec<&str> = manifests
        .iter()
        .filter_map(|d| d.annotations.get(REF_NAME))
        .map(String::as_str)
        .collect();
    let found = match reference {
        // A ref name may be a bare tag or a whole reference ending in `:tag`.
        Some(tag) => manifests.iter().find(|d| {
            d.annotations
                .get(REF_NAME)
                .is_some_and(|n| n == tag || n.rsplit_once(':').is_some_and(|(_, t)| t == tag))
        }),
        None if manifests.len() == 1 => manifests.first(),
        None => None,
    };
    found.cloned().ok_or_else(|| ImageError::NotInLayout {
        image: image.to_string(),
        problem: match reference {
            Some(tag) => format!(
                "the layout has no image named {tag:?} (its names: {})",
                show(&names)
            ),
            None => format!(
                "the layout holds {} images: name one as DIR:NAME (its names: {})",
                manifests.len(),
                show(&names)
            ),
        },
    })
}

fn show(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

impl Layout {
    fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        let hex = checked_hex(&self.image, digest)?;
        Ok(self.dir.join("blobs/sha256").join(hex))
    }

    fn blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(&descriptor.digest)?;
        std::fs::read(&path).map_err(|e| ImageError::io("reading the blob", path, e))
    }
}

impl BlobSource for Layout {
    fn open_layer(&self, index: usize) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        let path = self.blob_path(&self.layers[index])?;
        let file = std::fs::File::open(&path)
            .map_err(|e| ImageError::io("opening the layer blob", path, e))?;
        Ok(Box::new(file))
    }
}
