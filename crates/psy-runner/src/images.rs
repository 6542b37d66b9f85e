//! The images the selected tests run in (`image = "..."`), resolved once before the run's first
//! attempt: which layer directories make each one's root, and what identifies it in results.
//!
//! Today a plain root filesystem directory is an image of one layer. Image archives, OCI
//! layouts and registry references come from the machine's image store (issue 10).

use psy_model::TestSpec;
use std::collections::BTreeMap;
use std::path::PathBuf;

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
}

/// Every image the tests name, by the value the manifest gave (`SandboxRequest::image`).
pub type Images = BTreeMap<String, ResolvedImage>;

/// Resolves the images of `tests`; an error names the first test whose image cannot be used.
pub fn resolve(tests: &[TestSpec]) -> Result<Images, String> {
    let mut images = Images::new();
    for test in tests {
        let Some(value) = &test.sandbox.image else {
            continue;
        };
        if test.sandbox.privileged {
            return Err(format!(
                "test `{}` ({}): `privileged = true` runs on the host's root: it cannot have an \
                 image (image = {value:?})",
                test.id, test.origin
            ));
        }
        if images.contains_key(value) {
            continue;
        }
        let resolved = resolve_one(value).map_err(|problem| {
            format!(
                "test `{}` ({}): image = {value:?}: {problem}",
                test.id, test.origin
            )
        })?;
        images.insert(value.clone(), resolved);
    }
    Ok(images)
}

fn resolve_one(value: &str) -> Result<ResolvedImage, String> {
    let path = PathBuf::from(value);
    if !path.is_absolute() {
        return Err(
            "registry images are not supported yet: give a root filesystem directory".into(),
        );
    }
    let meta = std::fs::metadata(&path).map_err(|e| format!("{e}"))?;
    if !meta.is_dir() {
        return Err(
            "image archives are not supported yet: give a root filesystem directory".into(),
        );
    }
    if path.join("oci-layout").exists() {
        return Err("OCI layouts are not supported yet: give a root filesystem directory".into());
    }
    let path = std::fs::canonicalize(&path).map_err(|e| format!("{e}"))?;
    Ok(ResolvedImage {
        id: format!("dir:{}", path.display()),
        layers: vec![path],
        user_xattrs: false,
    })
}
