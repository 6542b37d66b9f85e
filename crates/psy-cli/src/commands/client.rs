//! The fleet client of `psy submit`, `psy runs`, `psy cancel` and `psy show --server`: the
//! server and token from the flags, else `PSY_SERVER`/`PSY_TOKEN`, else the client config file
//! (`$XDG_CONFIG_HOME/psyduck/client.toml`, by default `~/.config/psyduck/client.toml`):
//!
//! ```toml
//! server = "http://psy.example:8470"
//! token = "..."
//! ```

use crate::cli::ServerArgs;
use crate::exit::usage;
use psy_fleet::{FleetClient, FleetError, ServerUrl};
use std::path::PathBuf;

/// The client config file's keys.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientConfig {
    server: Option<String>,
    token: Option<String>,
}

/// Where the client config is read from.
fn config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("psyduck").join("client.toml"))
}

fn read_config() -> anyhow::Result<(ClientConfig, Option<PathBuf>)> {
    let Some(path) = config_path() else {
        return Ok((ClientConfig::default(), None));
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((ClientConfig::default(), None))
        }
        Err(e) => return Err(usage(format!("{}: cannot read it: {e}", path.display()))),
    };
    let config = toml::from_str(&text).map_err(|e| {
        usage(format!(
            "{}: {}",
            path.display(),
            e.to_string().replace('\n', " ")
        ))
    })?;
    Ok((config, Some(path)))
}

/// A client of the server the flags, environment or config name, with their token.
pub(crate) fn connect(args: &ServerArgs) -> anyhow::Result<FleetClient> {
    connect_with(args.server.as_deref(), args.token.as_deref())
}

/// Like [`connect`], from optional values (an empty server: not given).
pub(crate) fn connect_with(
    server: Option<&str>,
    token: Option<&str>,
) -> anyhow::Result<FleetClient> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (config, path) = read_config()?;
    let from_config = |what: &str| match &path {
        Some(p) => format!(
            "--{what}, ${}, or `{what}` in {}",
            what_env(what),
            p.display()
        ),
        None => format!(
            "--{what}, ${}, or `{what}` in {}",
            what_env(what),
            config_path().map_or("~/.config/psyduck/client.toml".into(), |p| p
                .display()
                .to_string())
        ),
    };
    let server = server
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| env("PSY_SERVER"))
        .or(config.server)
        .ok_or_else(|| usage(format!("no server given: pass {}", from_config("server"))))?;
    let token = token
        .map(str::to_string)
        .or_else(|| env("PSY_TOKEN"))
        .or(config.token)
        .ok_or_else(|| usage(format!("no token given: pass {}", from_config("token"))))?;
    let url = ServerUrl::parse(&server).map_err(usage)?;
    Ok(FleetClient::new(url, &token))
}

fn what_env(what: &str) -> &'static str {
    if what == "server" {
        "PSY_SERVER"
    } else {
        "PSY_TOKEN"
    }
}

/// A server error as the CLI reports it: a refusal of the request (400, 401, 403, 404, 409)
/// is the user's to fix (exit 2); an unreachable or failing server is psy's (exit 3).
pub(crate) fn failed(err: FleetError) -> anyhow::Error {
    match err.status() {
        Some(status) if (400..500).contains(&status) => usage(err),
        _ => anyhow::Error::new(err),
    }
}
