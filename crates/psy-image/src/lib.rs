//! Psyduck's image store: the root file systems tests run in, from a docker-archive, an OCI
//! layout, a registry or a plain directory, unpacked once per layer and shared by every run
//! of the machine.
//!
//! ```text
//! ImageRef::parse(value, manifest_dir)      what an `image = "..."` names (see ACCEPTED_FORMS)
//! ImageStore::open(ImageStore::default_dir())
//! store.resolve(&image, &PullOptions, &dyn Progress) -> ResolvedImage
//!     { digest: "sha256:...",           the manifest's digest: what produced a result
//!       layers: Vec<PathBuf>,           unpacked layers, bottom first: overlayfs lowerdirs
//!       config: ImageConfig,            Env, WorkingDir, User, Entrypoint, Cmd
//!       userxattr: bool }               mount the overlay with `userxattr`
//! store.list() / store.remove(name_or_digest) / store.gc(keep_used_since)
//! ```
//!
//! Layers are tars (plain, gzip or zstd, told apart by their first bytes), verified against
//! the manifest's digest of the blob and the config's diff id of the tar, and unpacked into a
//! directory of their own (named by the diff id) with whiteouts turned into overlayfs
//! whiteouts (character devices 0:0) and opaque markers into the `trusted.overlay.opaque`
//! xattr (`user.overlay.opaque` without root). Each layer is unpacked into a temporary
//! directory under a per-layer flock and renamed into place, so psy processes pulling the
//! same layer at once wait for each other and reuse one copy. The store's layout is in
//! [`layout`](crate::layout)'s documentation and docs/images.md.

mod config;
mod digest;
mod error;
mod gc;
mod index;
mod layers;
mod layout;
mod lock;
mod progress;
mod reference;
mod registry;
mod source;
mod spec;
mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod unpack;

pub use config::ImageConfig;
pub use error::{ImageError, ACCEPTED_FORMS};
pub use gc::GcReport;
pub use progress::{NoProgress, Progress};
pub use reference::{ImageRef, Reference, RegistryRef};
pub use registry::auth::{Credentials, PASSWORD_ENV, USERNAME_ENV};
pub use store::{ImageInfo, ImageStore, ResolvedImage, STORE_ENV};
pub use unpack::LayerStats;

/// When [`ImageStore::resolve`] asks a registry again for an image it already holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only when the store lacks the tag (or digest): a run starts without the network once
    /// its images are pulled.
    #[default]
    IfMissing,
    /// Always ask for the tag's current manifest (`psy image pull`); layers already unpacked
    /// are still reused.
    Always,
}

/// How registry images are pulled.
#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    /// Registries (`host` or `host:port`) reached over plain HTTP; loopback ones
    /// (`localhost`, `127.0.0.1`, `[::1]`) always are.
    pub insecure_registries: Vec<String>,
    /// When to ask the registry again.
    pub policy: PullPolicy,
    /// Credentials for every registry; `None`: [`Credentials::lookup`] per registry.
    pub credentials: Option<Credentials>,
}
