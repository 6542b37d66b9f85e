//! [`Progress`]: what resolving an image reports while it imports, downloads and unpacks
//! layers, for a progress bar or log lines.

use std::io::{self, Read};

/// Receives progress of [`crate::ImageStore::resolve`]; called from several threads at once
/// (layers are unpacked in parallel). Every method has an empty default.
pub trait Progress: Sync {
    /// `layer` (its diff id) starts unpacking; `size` is the blob's size where known.
    fn layer_started(&self, layer: &str, size: Option<u64>) {
        let _ = (layer, size);
    }
    /// `bytes` more of the layer's blob were read.
    fn layer_bytes(&self, layer: &str, bytes: u64) {
        let _ = (layer, bytes);
    }
    /// `layer` is ready; `reused`: it had been unpacked before (by this or another image).
    fn layer_finished(&self, layer: &str, reused: bool) {
        let _ = (layer, reused);
    }
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Reports the bytes read through it to a [`Progress`], in steps of at least 1 MiB.
pub(crate) struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
    layer: &'a str,
    unreported: u64,
}

impl<'a, R: Read> ProgressReader<'a, R> {
    pub(crate) fn new(inner: R, progress: &'a dyn Progress, layer: &'a str) -> Self {
        ProgressReader {
            inner,
            progress,
            layer,
            unreported: 0,
        }
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.unreported += n as u64;
        if self.unreported >= 1 << 20 || (n == 0 && self.unreported > 0) {
            self.progress.layer_bytes(self.layer, self.unreported);
            self.unreported = 0;
        }
        Ok(n)
    }
}
