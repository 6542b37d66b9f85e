//! From a manifest or an index (manifest list) to one image: picking this machine's platform,
//! fetching and verifying the chosen manifest and its config. Shared by OCI layouts and
//! registries, which differ only in how they fetch a blob.

use super::{Fetched, LayerBlob};
use crate::digest::{sha256, verify};
use crate::registry::platform;
use crate::spec::{self, Descriptor, Index, Manifest, Probe};
use crate::ImageError;

/// Fetches a manifest or config blob by descriptor (the caller verifies nothing).
pub(crate) type FetchBlob<'a> = dyn Fn(&Descriptor) -> Result<Vec<u8>, ImageError> + 'a;

/// Follows `bytes` (a manifest or index whose digest was verified) to this machine's image.
pub(crate) fn resolve(
    image: &str,
    bytes: Vec<u8>,
    fetch: &FetchBlob<'_>,
) -> Result<Fetched, ImageError> {
    let mut bytes = bytes;
    // An index may point to another index (rare): follow a few levels, no more.
    for _ in 0..4 {
        let probe: Probe = spec::parse(image, "the manifest", &bytes)?;
        if !probe.is_index() {
            if probe.schema_version == Some(1) {
                return Err(ImageError::UnsupportedMediaType {
                    image: image.to_string(),
                    what: "the manifest (Docker schema 1, deprecated: push the image again with a current tool)".into(),
                    media_type: probe.media_type,
                });
            }
            return from_manifest(image, bytes, fetch);
        }
        let index: Index = spec::parse(image, "the manifest list", &bytes)?;
        let wanted = platform::this_machine();
        let Some(chosen) = platform::choose(&index.manifests, &wanted) else {
            return Err(ImageError::NoPlatform {
                image: image.to_string(),
                wanted: platform::show(&wanted),
                available: platform::available(&index.manifests),
            });
        };
        let next = fetch(chosen)?;
        verify(
            image,
            &format!("the manifest for {}", platform::show(&wanted)),
            &chosen.digest,
            &next,
        )?;
        bytes = next;
    }
    Err(ImageError::malformed(
        image,
        "manifest lists nested more than 4 deep",
    ))
}

fn from_manifest(
    image: &str,
    bytes: Vec<u8>,
    fetch: &FetchBlob<'_>,
) -> Result<Fetched, ImageError> {
    let manifest: Manifest = spec::parse(image, "the manifest", &bytes)?;
    let config = fetch(&manifest.config)?;
    verify(image, "the config", &manifest.config.digest, &config)?;
    let mut layers = Vec::new();
    for layer in &manifest.layers {
        if !layer.media_type.is_empty() && !layer.media_type.contains("tar")
            || layer.media_type.contains("encrypted")
        {
            return Err(ImageError::UnsupportedMediaType {
                image: image.to_string(),
                what: format!("layer {}", layer.digest),
                media_type: layer.media_type.clone(),
            });
        }
        crate::digest::checked_hex(image, &layer.digest)?;
        layers.push(LayerBlob {
            digest: Some(layer.digest.clone()),
            media_type: layer.media_type.clone(),
            size: Some(layer.size),
        });
    }
    Ok(Fetched {
        digest: sha256(&bytes),
        manifest: bytes,
        config_digest: manifest.config.digest,
        config,
        layers,
    })
}
