//! Pulling from a registry over the OCI distribution API: the manifest (or manifest list, for
//! this machine's platform), the config, and layer blobs streamed straight into unpacking.

pub(crate) mod auth;
mod client;
pub(crate) mod platform;

use crate::digest::{sha256, verify};
use crate::reference::{Reference, RegistryRef};
use crate::source::{manifest, BlobSource, Fetched};
use crate::spec::{Descriptor, MANIFEST_ACCEPT};
use crate::{ImageError, PullOptions};
use client::Client;
use std::io::Read;

/// One pull of one image.
#[derive(Debug)]
pub(crate) struct Pull {
    client: Client,
    reference: RegistryRef,
    image: String,
    layers: Vec<String>,
}

impl Pull {
    pub(crate) fn start(reference: &RegistryRef, opts: &PullOptions) -> Result<Pull, ImageError> {
        Ok(Pull {
            client: Client::new(reference, opts),
            reference: reference.clone(),
            image: reference.to_string(),
            layers: Vec::new(),
        })
    }

    /// Fetches and verifies the manifest (following a list to this platform) and config.
    pub(crate) fn manifest(&mut self) -> Result<Fetched, ImageError> {
        let wanted = match &self.reference.reference {
            Reference::Tag(tag) => tag.clone(),
            Reference::Digest(digest) => digest.clone(),
        };
        let (bytes, header_digest) = self
            .client
            .get_bytes(&format!("manifests/{wanted}"), Some(MANIFEST_ACCEPT))?;
        match &self.reference.reference {
            Reference::Digest(digest) => verify(&self.image, "the manifest", digest, &bytes)?,
            Reference::Tag(_) => {
                if let Some(promised) = header_digest.filter(|d| d.starts_with("sha256:")) {
                    verify(
                        &self.image,
                        "the manifest (its Docker-Content-Digest)",
                        &promised,
                        &bytes,
                    )?;
                }
            }
        }
        tracing::debug!("image {}: manifest {}", self.image, sha256(&bytes));
        let client = &self.client;
        let fetch = |d: &Descriptor| {
            let kind = if d.media_type.contains("manifest") || d.media_type.contains("index") {
                "manifests"
            } else {
                "blobs"
            };
            client
                .get_bytes(&format!("{kind}/{}", d.digest), Some(MANIFEST_ACCEPT))
                .map(|(b, _)| b)
        };
        let fetched = manifest::resolve(&self.image, bytes, &fetch)?;
        self.layers = fetched
            .layers
            .iter()
            .filter_map(|l| l.digest.clone())
            .collect();
        Ok(fetched)
    }
}

impl BlobSource for Pull {
    fn open_layer(&self, index: usize) -> Result<Box<dyn Read + Send + '_>, ImageError> {
        self.client
            .get_stream(&format!("blobs/{}", self.layers[index]))
    }
}
