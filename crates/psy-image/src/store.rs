//! [`ImageStore`]: the machine's content-addressed store of images and unpacked layers, and
//! [`ImageStore::resolve`], which turns any [`ImageRef`] into layers ready for overlayfs.

use crate::config::ImageConfig;
use crate::index::{self, ImageRecord, LayerRecord};
use crate::layers::{self, LayerJob, ReadyLayer};
use crate::layout::Layout;
use crate::lock::FileLock;
use crate::progress::Progress;
use crate::reference::{ImageRef, Reference};
use crate::source::{docker_archive, oci_layout, BlobSource, Fetched};
use crate::unpack::UnpackMode;
use crate::{spec, ImageError, PullOptions, PullPolicy};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable overriding [`ImageStore::default_dir`].
pub const STORE_ENV: &str = "PSY_IMAGE_STORE";

/// A store of images and their unpacked layers, shared by every psy process of the machine
/// (or user): safe to use from several threads and processes at once.
#[derive(Clone, Debug)]
pub struct ImageStore {
    layout: Layout,
    mode: UnpackMode,
}

/// An image ready to be a container's root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedImage {
    /// `sha256:` of the image's manifest; `dir:<path>` for a root file system directory and
    /// `host` for the host's root.
    pub digest: String,
    /// The unpacked layer directories, bottom first: overlayfs lowerdirs (which overlayfs
    /// lists top first). Empty for the host's root; the directory itself for a root
    /// file system directory.
    pub layers: Vec<PathBuf>,
    /// The image config's process defaults.
    pub config: ImageConfig,
    /// Some layer marks opaque directories with `user.overlay.opaque` (unpacked without root):
    /// mount the overlay with the `userxattr` option.
    pub userxattr: bool,
}

/// An image the store holds, for `psy image ls`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    /// `sha256:` of the manifest.
    pub digest: String,
    /// The names pointing to it (references it was pulled or imported as).
    pub names: Vec<String>,
    /// Its number of layers.
    pub layers: usize,
    /// Bytes of file content in its unpacked layers (shared layers counted in full).
    pub size: u64,
    /// When first stored.
    pub created: SystemTime,
    /// When last resolved.
    pub used: SystemTime,
}

impl ImageStore {
    /// Opens (creating if needed) the store rooted at `dir`; layers are unpacked with root's
    /// privileges when this process has them.
    pub fn open(dir: impl Into<PathBuf>) -> Result<ImageStore, ImageError> {
        let privileged = rustix::process::geteuid().is_root();
        ImageStore::open_with(dir, privileged)
    }

    /// Like [`ImageStore::open`], choosing whether to unpack as root (owners, devices,
    /// `trusted.overlay.*`) or as an ordinary user (`user.overlay.*`, no devices).
    pub fn open_with(dir: impl Into<PathBuf>, privileged: bool) -> Result<ImageStore, ImageError> {
        let layout = Layout { root: dir.into() };
        for dir in layout.dirs() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| ImageError::io("creating the image store directory", &dir, e))?;
        }
        Ok(ImageStore {
            layout,
            mode: UnpackMode { privileged },
        })
    }

    /// `$PSY_IMAGE_STORE` if set; otherwise `/var/lib/psyduck/images` for root and
    /// `$XDG_DATA_HOME/psyduck/images` (`~/.local/share/psyduck/images`) for others.
    pub fn default_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os(STORE_ENV).filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        if rustix::process::geteuid().is_root() {
            return PathBuf::from("/var/lib/psyduck/images");
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        data.join("psyduck/images")
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.layout.root
    }

    /// Makes `image` ready: imports or pulls it as needed, unpacks every layer not yet
    /// unpacked (in parallel, each verified against its digests) and records the use.
    pub fn resolve(
        &self,
        image: &ImageRef,
        opts: &PullOptions,
        progress: &dyn Progress,
    ) -> Result<ResolvedImage, ImageError> {
        let name = image.name();
        let span = tracing::info_span!("resolve_image", image = %name);
        let _enter = span.enter();
        match image {
            ImageRef::Host => Ok(ResolvedImage {
                digest: "host".into(),
                layers: Vec::new(),
                config: ImageConfig::default(),
                userxattr: false,
            }),
            ImageRef::RootfsDir(dir) => Ok(ResolvedImage {
                digest: name.clone(),
                layers: vec![dir.clone()],
                config: ImageConfig::default(),
                userxattr: false,
            }),
            ImageRef::DockerArchive(path) => {
                let _lock = FileLock::shared(&self.layout.store_lock())?;
                let (fetched, archive) = docker_archive::read(path, &name)?;
                let resolved = self.store(&name, fetched, &archive, progress)?;
                for tag in &archive.repo_tags {
                    index::write_name(&self.layout, tag, &resolved.digest)?;
                }
                Ok(resolved)
            }
            ImageRef::OciLayout { dir, reference } => {
                let _lock = FileLock::shared(&self.layout.store_lock())?;
                let (fetched, layout) = oci_layout::read(dir, reference.as_deref(), &name)?;
                self.store(&name, fetched, &layout, progress)
            }
            ImageRef::Registry(reference) => {
                let _lock = FileLock::shared(&self.layout.store_lock())?;
                if opts.policy == PullPolicy::IfMissing {
                    let known = match &reference.reference {
                        Reference::Digest(digest) => Some(digest.clone()),
                        Reference::Tag(_) => index::read_name(&self.layout, &name)?,
                    };
                    if let Some(resolved) = known
                        .map(|d| self.cached(&name, &d, progress))
                        .transpose()?
                        .flatten()
                    {
                        tracing::debug!("image {name}: in the store as {}", resolved.digest);
                        return Ok(resolved);
                    }
                }
                let mut pull = crate::registry::Pull::start(reference, opts)?;
                let fetched = pull.manifest()?;
                let resolved = self.store(&name, fetched, &pull, progress)?;
                index::write_name(
                    &self.layout,
                    &reference.with_digest(&resolved.digest).to_string(),
                    &resolved.digest,
                )?;
                Ok(resolved)
            }
        }
    }

    /// The image `digest` if the store holds it with every layer unpacked (recording the use).
    fn cached(
        &self,
        name: &str,
        digest: &str,
        progress: &dyn Progress,
    ) -> Result<Option<ResolvedImage>, ImageError> {
        let hex = crate::digest::checked_hex(name, digest)?;
        let Some(mut record) = index::read_record(&self.layout, hex)? else {
            return Ok(None);
        };
        let mut ready = Vec::new();
        for layer in &record.layers {
            let layer_hex = crate::digest::checked_hex(name, &layer.diff_id)?;
            match layers::read_meta(&self.layout, layer_hex)? {
                Some(meta) => ready.push((
                    crate::layout::layer_root(&self.layout.layer(layer_hex)),
                    meta.stats.userxattr,
                )),
                None => return Ok(None),
            }
        }
        for layer in &record.layers {
            progress.layer_finished(&layer.diff_id, true);
        }
        record.used = index::now_secs();
        index::write_record(&self.layout, &record)?;
        index::write_name(&self.layout, name, digest)?;
        Ok(Some(ResolvedImage {
            digest: record.digest,
            userxattr: ready.iter().any(|(_, u)| *u),
            layers: ready.into_iter().map(|(root, _)| root).collect(),
            config: record.config,
        }))
    }

    /// Records `fetched` under `name` and makes its layers ready.
    fn store(
        &self,
        name: &str,
        fetched: Fetched,
        source: &dyn BlobSource,
        progress: &dyn Progress,
    ) -> Result<ResolvedImage, ImageError> {
        if let Some(resolved) = self.cached(name, &fetched.digest, progress)? {
            return Ok(resolved);
        }
        let config: spec::ConfigFile = spec::parse(name, "the config", &fetched.config)?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != fetched.layers.len() {
            return Err(ImageError::malformed(
                name,
                format!(
                    "the manifest lists {} layers but the config has {} diff ids",
                    fetched.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        for (digest, bytes) in [
            (&fetched.digest, &fetched.manifest),
            (&fetched.config_digest, &fetched.config),
        ] {
            let path = self.layout.blob(crate::digest::checked_hex(name, digest)?);
            if !path.exists() {
                index::write_atomic(&path, bytes)?;
            }
        }
        let jobs: Vec<LayerJob<'_>> = fetched
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(blob, diff_id)| LayerJob {
                image: name,
                diff_id,
                blob_digest: blob.digest.as_deref(),
                blob_size: blob.size,
            })
            .collect();
        let ready = self.unpack_all(&jobs, source, progress)?;
        let now = index::now_secs();
        let record = ImageRecord {
            digest: fetched.digest.clone(),
            config_digest: fetched.config_digest.clone(),
            config: ImageConfig::from(&config),
            layers: ready
                .iter()
                .zip(&fetched.layers)
                .map(|(layer, blob)| LayerRecord {
                    diff_id: layer.meta.diff_id.clone(),
                    digest: blob
                        .digest
                        .clone()
                        .unwrap_or_else(|| layer.meta.blob_digest.clone()),
                    media_type: blob.media_type.clone(),
                    size: layer.meta.blob_size,
                })
                .collect(),
            created: now,
            used: now,
        };
        index::write_record(&self.layout, &record)?;
        index::write_name(&self.layout, name, &record.digest)?;
        tracing::info!(
            "image {name}: stored as {} ({} layers)",
            record.digest,
            ready.len()
        );
        Ok(ResolvedImage {
            digest: record.digest,
            userxattr: ready.iter().any(|l| l.meta.stats.userxattr),
            layers: ready.into_iter().map(|l| l.root).collect(),
            config: record.config,
        })
    }

    /// Makes every layer ready, a few at a time in parallel; the first error wins.
    fn unpack_all(
        &self,
        jobs: &[LayerJob<'_>],
        source: &dyn BlobSource,
        progress: &dyn Progress,
    ) -> Result<Vec<ReadyLayer>, ImageError> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<std::sync::Mutex<Option<Result<ReadyLayer, ImageError>>>> =
            jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
        let workers = jobs.len().clamp(1, 4);
        let span = tracing::Span::current();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    let _enter = span.enter();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        let result =
                            layers::ensure(&self.layout, job, self.mode, progress, &|| {
                                source.open_layer(i)
                            });
                        if let Ok(layer) = &result {
                            if layer.reused {
                                progress.layer_finished(job.diff_id, true);
                            }
                        }
                        let failed = result.is_err();
                        *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                        if failed {
                            // Stop handing out work; layers already started finish.
                            next.store(jobs.len(), std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let mut ready = Vec::new();
        for (slot, job) in results.into_iter().zip(jobs) {
            match slot.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Some(result) => ready.push(result?),
                None => {
                    return Err(ImageError::malformed(
                        job.image,
                        format!(
                            "layer {} was not unpacked (an earlier layer failed)",
                            job.diff_id
                        ),
                    ))
                }
            }
        }
        Ok(ready)
    }

    /// Every image of the store with its names, newest use first.
    pub fn list(&self) -> Result<Vec<ImageInfo>, ImageError> {
        let names = index::all_names(&self.layout)?;
        let mut infos = Vec::new();
        for record in index::all_records(&self.layout)? {
            let mut size = 0;
            for layer in &record.layers {
                if let Ok(hex) = crate::digest::checked_hex(&record.digest, &layer.diff_id) {
                    size += layers::read_meta(&self.layout, hex)?.map_or(0, |m| m.stats.bytes);
                }
            }
            infos.push(ImageInfo {
                names: names
                    .iter()
                    .filter(|(_, d)| *d == record.digest)
                    .map(|(n, _)| n.clone())
                    .collect(),
                layers: record.layers.len(),
                size,
                created: UNIX_EPOCH + Duration::from_secs(record.created),
                used: UNIX_EPOCH + Duration::from_secs(record.used),
                digest: record.digest,
            });
        }
        infos.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.digest.cmp(&b.digest)));
        Ok(infos)
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }
}
