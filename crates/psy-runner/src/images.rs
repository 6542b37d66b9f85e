//! The images the selected tests run in (`image = "..."`), resolved once before the run's first
//! attempt through the machine's image store (`psy-image`): imported, pulled and unpacked as
//! needed, then known by their layer directories and the digest recorded with each attempt.

use psy_image::{ImageRef, ImageStore, Progress, PullOptions};
use psy_model::TestSpec;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One image, ready to be a container's root.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedImage {
    /// What the image is, recorded with every attempt that ran in it: `sha256:...` of its
    /// manifest, or `dir:PATH` for a root filesystem directory.
    pub id: String,
    /// Unpacked layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    /// The layers' whiteouts are `user.overlay.*` attributes (unpacked without root).
    pub user_xattrs: bool,
    /// The image config's `Env` (`NAME=value`): under the test's own `env`.
    pub env: Vec<(String, String)>,
    /// The image config's `WorkingDir`: where a test without a `cwd` of its own starts.
    pub working_dir: Option<PathBuf>,
    /// The image config's `User` as `(uid, gid)`; `None`: root.
    pub user: Option<(u32, u32)>,
}

/// Every image the tests name, by the value the manifest gave (`SandboxRequest::image`).
pub type Images = BTreeMap<String, ResolvedImage>;

/// Resolves the images of `tests` (relative paths from `project_dir`), opening the store only
/// when one needs it; an error names the first test whose image cannot be used.
pub fn resolve(
    tests: &[TestSpec],
    project_dir: &Path,
    opts: &PullOptions,
    progress: &dyn Progress,
) -> Result<Images, String> {
    let mut images = Images::new();
    let mut store: Option<ImageStore> = None;
    for test in tests {
        let Some(value) = &test.sandbox.image else {
            if let Some(path) = &test.sandbox.project_path {
                return Err(format!(
                    "test `{}` ({}): project-path = {:?} needs an image (image = \"...\"): on \
                     the host's root the project is at its own path",
                    test.id,
                    test.origin,
                    path.display().to_string()
                ));
            }
            continue;
        };
        let fail = |problem: String| {
            format!(
                "test `{}` ({}): image = {value:?}: {problem}",
                test.id, test.origin
            )
        };
        // The store's errors name the image themselves.
        let store_fail =
            |e: psy_image::ImageError| format!("test `{}` ({}): {e}", test.id, test.origin);
        if test.sandbox.privileged {
            return Err(fail(
                "`privileged = true` runs on the host's root: it cannot have an image".into(),
            ));
        }
        if images.contains_key(value) {
            continue;
        }
        let reference = ImageRef::parse(value, project_dir).map_err(store_fail)?;
        let resolved = match &reference {
            // A directory is used in place: no store needed (nor a home for one).
            ImageRef::RootfsDir(dir) => rootfs_dir(dir).map_err(fail)?,
            ImageRef::Host => continue,
            _ => {
                if store.is_none() {
                    let dir = ImageStore::default_dir();
                    store = Some(ImageStore::open(&dir).map_err(store_fail)?);
                }
                let store = store.as_ref().expect("opened above");
                let image = store
                    .resolve(&reference, opts, progress)
                    .map_err(store_fail)?;
                let user = match image.config.user.as_deref() {
                    None | Some("") => None,
                    Some(user) => crate::image_user::resolve(user, &image.layers).map_err(fail)?,
                };
                ResolvedImage {
                    user,
                    id: image.digest,
                    layers: image.layers,
                    user_xattrs: image.userxattr,
                    env: image
                        .config
                        .env
                        .iter()
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                    working_dir: image.config.working_dir.map(PathBuf::from),
                }
            }
        };
        tracing::info!(image = %value, id = %resolved.id, layers = resolved.layers.len(), "image ready");
        images.insert(value.clone(), resolved);
    }
    Ok(images)
}

/// A root filesystem directory: one layer, itself.
fn rootfs_dir(dir: &Path) -> Result<ResolvedImage, String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(ResolvedImage {
        id: format!("dir:{}", dir.display()),
        layers: vec![dir],
        user_xattrs: false,
        env: Vec::new(),
        working_dir: None,
        user: None,
    })
}
