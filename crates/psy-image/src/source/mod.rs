//! Where images come from: a docker-archive, an OCI layout or a registry. Each source reads
//! the manifest and config and hands out its layer blobs; the store does the rest.

pub(crate) mod docker_archive;
pub(crate) mod manifest;
pub(crate) mod oci_layout;

use crate::ImageError;
use std::io::Read;

/// An image as its source describes it, before any layer is unpacked.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// `sha256:` of `manifest`.
    pub(crate) digest: String,
    pub(crate) manifest: Vec<u8>,
    pub(crate) config_digest: String,
    pub(crate) config: Vec<u8>,
    /// Bottom first.
    pub(crate) layers: Vec<LayerBlob>,
}

/// One layer's blob as the manifest lists it.
#[derive(Clone, Debug)]
pub(crate) struct LayerBlob {
    /// The digest to verify the blob against (`None`: a legacy docker-archive names none; the
    /// diff id is still verified).
    pub(crate) digest: Option<String>,
    pub(crate) media_type: String,
    pub(crate) size: Option<u64>,
}

/// Opens layer blobs, from several threads at once.
pub(crate) trait BlobSource: Sync {
    /// A reader of the blob of layer `index` (bottom first).
    fn open_layer(&self, index: usize) -> Result<Box<dyn Read + Send + '_>, ImageError>;
}
