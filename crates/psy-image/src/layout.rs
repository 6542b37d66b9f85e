//! Where the store keeps what: the paths of its directories and files.
//!
//! ```text
//! <root>/store.lock                 shared while resolving, exclusive during gc and rm
//! <root>/blobs/sha256/<hex>         manifests and configs, by digest
//! <root>/layers/<hex>/root/         an unpacked layer (hex of its diff id): an overlayfs lowerdir
//! <root>/layers/<hex>/layer.json    what unpacking it produced (sizes, userxattr)
//! <root>/layers/<hex>.lock          held while the layer is unpacked
//! <root>/images/<hex>.json          an image (hex of its manifest digest): config, layers, times
//! <root>/names/<name>               the manifest digest a name points to (`/` written %2F)
//! <root>/tmp/                       layers being unpacked, renamed into layers/ when complete
//! ```

use std::path::{Path, PathBuf};

/// The paths of a store rooted at `root`.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub(crate) root: PathBuf,
}

impl Layout {
    pub(crate) fn store_lock(&self) -> PathBuf {
        self.root.join("store.lock")
    }
    pub(crate) fn blobs(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }
    pub(crate) fn blob(&self, hex: &str) -> PathBuf {
        self.blobs().join(hex)
    }
    pub(crate) fn layers(&self) -> PathBuf {
        self.root.join("layers")
    }
    pub(crate) fn layer(&self, hex: &str) -> PathBuf {
        self.layers().join(hex)
    }
    pub(crate) fn layer_lock(&self, hex: &str) -> PathBuf {
        self.layers().join(format!("{hex}.lock"))
    }
    pub(crate) fn images(&self) -> PathBuf {
        self.root.join("images")
    }
    pub(crate) fn image(&self, hex: &str) -> PathBuf {
        self.images().join(format!("{hex}.json"))
    }
    pub(crate) fn names(&self) -> PathBuf {
        self.root.join("names")
    }
    pub(crate) fn name(&self, name: &str) -> PathBuf {
        self.names().join(encode_name(name))
    }
    pub(crate) fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Every directory a store needs.
    pub(crate) fn dirs(&self) -> [PathBuf; 5] {
        [
            self.blobs(),
            self.layers(),
            self.images(),
            self.names(),
            self.tmp(),
        ]
    }
}

/// The lowerdir inside an unpacked layer's directory.
pub(crate) fn layer_root(layer_dir: &Path) -> PathBuf {
    layer_dir.join("root")
}

/// A name as one file name: `%` and `/` escaped.
pub(crate) fn encode_name(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

/// The inverse of [`encode_name`].
pub(crate) fn decode_name(file: &str) -> String {
    file.replace("%2F", "/").replace("%25", "%")
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_round_trip_through_file_names() {
        for name in [
            "oci:/a/b:tag",
            "127.0.0.1:5000/x/y@sha256:00",
            "docker-archive:/p%2F/q",
        ] {
            let file = super::encode_name(name);
            assert!(!file.contains('/'));
            assert_eq!(super::decode_name(&file), name);
        }
    }
}
