//! [`ImageConfig`]: the process defaults an image sets (`Env`, `WorkingDir`, `User`, ...).

use crate::spec::ConfigFile;
use serde::{Deserialize, Serialize};

/// The parts of an image's config that shape the container's process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `NAME=value` entries (`Env`).
    pub env: Vec<String>,
    /// The starting directory (`WorkingDir`), when the image sets one.
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid` (`User`), when set.
    pub user: Option<String>,
    /// `Entrypoint`, when set.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`, when set.
    pub cmd: Option<Vec<String>>,
}

impl From<&ConfigFile> for ImageConfig {
    fn from(file: &ConfigFile) -> Self {
        let process = file.config.clone().unwrap_or_default();
        let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
        ImageConfig {
            env: process.env.unwrap_or_default(),
            working_dir: non_empty(process.working_dir),
            user: non_empty(process.user),
            entrypoint: process.entrypoint,
            cmd: process.cmd,
        }
    }
}
