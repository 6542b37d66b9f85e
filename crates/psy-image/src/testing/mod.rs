//! Builders of small test images (feature `testing`): layers of files, directories, links,
//! whiteouts and opaque directories, written as a docker-archive or into an OCI layout, so
//! tests of the store and of `psy image` need no image from elsewhere.

mod registry;

pub use registry::{have, TestRegistry};

use crate::digest::sha256;
use crate::spec::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, REF_NAME};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

/// The mtime of every test entry.
pub const MTIME: u64 = 1_700_000_000;

/// One entry of a test layer.
#[derive(Clone, Debug)]
enum Entry {
    Dir(String, u32),
    File(String, Vec<u8>, u32),
    Symlink(String, String),
    Hardlink(String, String),
    Char(String, u32, u32),
    /// A regular file whose name is written as raw bytes (bypassing the tar crate's checks).
    Raw(Vec<u8>, Vec<u8>),
}

/// A layer's entries, in tar order.
#[derive(Clone, Debug, Default)]
pub struct TestLayer {
    entries: Vec<Entry>,
}

impl TestLayer {
    /// An empty layer.
    pub fn new() -> TestLayer {
        TestLayer::default()
    }

    /// A directory with `mode`.
    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        self.entries.push(Entry::Dir(path.into(), mode));
        self
    }

    /// A regular file.
    pub fn file(mut self, path: &str, content: &[u8], mode: u32) -> Self {
        self.entries
            .push(Entry::File(path.into(), content.to_vec(), mode));
        self
    }

    /// A symlink to `target`.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.entries
            .push(Entry::Symlink(path.into(), target.into()));
        self
    }

    /// A hardlink to `target`, an earlier entry of the layer.
    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        self.entries
            .push(Entry::Hardlink(path.into(), target.into()));
        self
    }

    /// A character device.
    pub fn char_device(mut self, path: &str, major: u32, minor: u32) -> Self {
        self.entries.push(Entry::Char(path.into(), major, minor));
        self
    }

    /// A whiteout deleting `path` of the layers below (`DIR/.wh.NAME`).
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let marker = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&marker, b"", 0o644)
    }

    /// Marks `dir` opaque: nothing of the layers below shows through it.
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), b"", 0o644)
    }

    /// A file whose name is written byte for byte (e.g. `../escape`), as a hostile tar would.
    pub fn raw_file(mut self, name: &[u8], content: &[u8]) -> Self {
        self.entries
            .push(Entry::Raw(name.to_vec(), content.to_vec()));
        self
    }

    /// A static busybox at `bin/busybox` and `bin/sh` linking to it (from the host's
    /// `/bin/busybox`, Debian's `busybox-static`).
    pub fn busybox(self) -> Self {
        let binary =
            std::fs::read("/bin/busybox").expect("reading /bin/busybox (install busybox-static)");
        self.dir("bin", 0o755)
            .file("bin/busybox", &binary, 0o755)
            .symlink("bin/sh", "busybox")
    }

    /// The layer as an uncompressed tar.
    pub fn tar(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(MTIME);
            header.set_uid(0);
            header.set_gid(0);
            header.set_size(0);
            let result = match entry {
                Entry::Dir(path, mode) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    builder.append_data(&mut header, path, &[][..])
                }
                Entry::File(path, content, mode) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(content.len() as u64);
                    builder.append_data(&mut header, path, &content[..])
                }
                Entry::Symlink(path, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    builder.append_link(&mut header, path, target)
                }
                Entry::Hardlink(path, target) => {
                    header.set_entry_type(tar::EntryType::Link);
                    header.set_mode(0o644);
                    builder.append_link(&mut header, path, target)
                }
                Entry::Char(path, major, minor) => {
                    header.set_entry_type(tar::EntryType::Char);
                    header.set_mode(0o666);
                    header.set_device_major(*major).expect("device major");
                    header.set_device_minor(*minor).expect("device minor");
                    builder.append_data(&mut header, path, &[][..])
                }
                Entry::Raw(name, content) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(0o644);
                    header.set_size(content.len() as u64);
                    header.as_old_mut().name[..name.len()].copy_from_slice(name);
                    header.set_cksum();
                    builder.append(&header, &content[..])
                }
            };
            result.expect("writing a test tar entry");
        }
        builder.into_inner().expect("finishing a test tar")
    }
}

/// How the layers of a test image are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestCompression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl TestCompression {
    fn media_type(self) -> &'static str {
        match self {
            TestCompression::None => "application/vnd.oci.image.layer.v1.tar",
            TestCompression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            TestCompression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// `bytes` compressed this way.
    pub fn compress(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            TestCompression::None => bytes.to_vec(),
            TestCompression::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(bytes).expect("gzip");
                gz.finish().expect("gzip")
            }
            TestCompression::Zstd => ruzstd::encoding::compress_to_vec(
                bytes,
                ruzstd::encoding::CompressionLevel::Fastest,
            ),
        }
    }
}

/// A test image: layers (bottom first) and the process defaults of its config.
#[derive(Clone, Debug, Default)]
pub struct TestImage {
    /// The layers, bottom first.
    pub layers: Vec<TestLayer>,
    /// `Env` of the config.
    pub env: Vec<String>,
    /// `WorkingDir` of the config.
    pub working_dir: Option<String>,
    /// `User` of the config.
    pub user: Option<String>,
    /// `architecture` of the config (default: this machine's).
    pub architecture: Option<String>,
}

impl TestImage {
    /// An image of `layers` with `PATH` set and `/work` as working directory.
    pub fn new(layers: Vec<TestLayer>) -> TestImage {
        TestImage {
            layers,
            env: vec!["PATH=/bin".into(), "IMAGE=test".into()],
            working_dir: Some("/work".into()),
            user: Some("0:0".into()),
            architecture: None,
        }
    }

    /// The image's config JSON.
    pub fn config(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self.layers.iter().map(|l| sha256(&l.tar())).collect();
        let architecture = self
            .architecture
            .clone()
            .unwrap_or_else(|| crate::registry::platform::this_machine().architecture);
        serde_json::to_vec(&json!({
            "architecture": architecture,
            "os": "linux",
            "config": { "Env": self.env, "WorkingDir": self.working_dir, "User": self.user, "Cmd": ["sh"] },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        }))
        .expect("serialising a config")
    }

    /// Writes a `docker save` tarball (legacy layout, `manifest.json` last) to `path`.
    pub fn write_docker_archive(&self, path: &Path, repo_tag: Option<&str>) {
        let config = self.config();
        let config_name = format!("{}.json", &sha256(&config)[7..]);
        let mut builder =
            tar::Builder::new(std::fs::File::create(path).expect("creating the docker-archive"));
        let mut layer_names = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let name = format!("layer{i}/layer.tar");
            append(&mut builder, &name, &layer.tar());
            layer_names.push(name);
        }
        append(&mut builder, &config_name, &config);
        let manifest = json!([{ "Config": config_name, "RepoTags": repo_tag.map(|t| vec![t]), "Layers": layer_names }]);
        append(
            &mut builder,
            "manifest.json",
            &serde_json::to_vec(&manifest).expect("manifest"),
        );
        builder.finish().expect("finishing the docker-archive");
    }

    /// Writes the image into the OCI layout `dir` (created, or added to), under `tag` if
    /// given; returns the manifest's digest.
    pub fn write_oci_layout(
        &self,
        dir: &Path,
        tag: Option<&str>,
        compression: TestCompression,
    ) -> String {
        let mut layers = Vec::new();
        for layer in &self.layers {
            let blob = compression.compress(&layer.tar());
            layers.push(json!({ "mediaType": compression.media_type(), "digest": write_blob(dir, &blob), "size": blob.len() }));
        }
        let config = self.config();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": { "mediaType": OCI_CONFIG, "digest": write_blob(dir, &config), "size": config.len() },
            "layers": layers,
        }))
        .expect("manifest");
        let digest = write_blob(dir, &manifest);
        add_to_index(
            dir,
            json!({ "mediaType": OCI_MANIFEST, "digest": digest, "size": manifest.len() }),
            tag,
        );
        digest
    }
}

/// Writes an image index (a manifest list) of `images` into the layout `dir`, one per
/// architecture, under `tag`; returns the index's digest.
pub fn write_oci_multi_platform(dir: &Path, tag: &str, images: &[(&str, TestImage)]) -> String {
    let mut manifests = Vec::new();
    for (architecture, image) in images {
        let image = TestImage {
            architecture: Some(architecture.to_string()),
            ..image.clone()
        };
        let digest = image.write_oci_layout(dir, None, TestCompression::Gzip);
        remove_from_index(dir, &digest);
        let size = std::fs::metadata(blob_path(dir, &digest))
            .expect("manifest blob")
            .len();
        manifests.push(json!({ "mediaType": OCI_MANIFEST, "digest": digest, "size": size, "platform": { "architecture": architecture, "os": "linux" } }));
    }
    let index = serde_json::to_vec(
        &json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests }),
    )
    .expect("index");
    let digest = write_blob(dir, &index);
    add_to_index(
        dir,
        json!({ "mediaType": OCI_INDEX, "digest": digest, "size": index.len() }),
        Some(tag),
    );
    digest
}

fn append<W: Write>(builder: &mut tar::Builder<W>, name: &str, data: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(MTIME);
    builder
        .append_data(&mut header, name, data)
        .expect("appending to a test archive");
}

fn blob_path(dir: &Path, digest: &str) -> std::path::PathBuf {
    dir.join("blobs/sha256").join(&digest[7..])
}

fn write_blob(dir: &Path, data: &[u8]) -> String {
    let digest = sha256(data);
    let path = blob_path(dir, &digest);
    std::fs::create_dir_all(path.parent().expect("blob dir")).expect("creating blobs/sha256");
    std::fs::write(&path, data).expect("writing a blob");
    digest
}

fn read_index(dir: &Path) -> Value {
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("writing oci-layout");
    match std::fs::read(dir.join("index.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("index.json"),
        Err(_) => json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [] }),
    }
}

fn add_to_index(dir: &Path, mut descriptor: Value, tag: Option<&str>) {
    let mut index = read_index(dir);
    if let Some(tag) = tag {
        descriptor["annotations"] = json!({ REF_NAME: tag });
    }
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(descriptor);
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("index"),
    )
    .expect("writing index.json");
}

fn remove_from_index(dir: &Path, digest: &str) {
    let mut index = read_index(dir);
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .retain(|m| m["digest"] != digest);
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("index"),
    )
    .expect("writing index.json");
}
