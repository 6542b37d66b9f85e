//! Registry authentication: credentials from the environment or `~/.docker/config.json`, and
//! answering a `Www-Authenticate` challenge (`Bearer realm=...,service=...,scope=...` with a
//! token from the realm, or `Basic`).

use crate::ImageError;
use base64::Engine as _;
use std::path::PathBuf;

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The environment variables naming credentials for every registry.
pub const USERNAME_ENV: &str = "PSY_REGISTRY_USERNAME";
/// See [`USERNAME_ENV`].
pub const PASSWORD_ENV: &str = "PSY_REGISTRY_PASSWORD";

impl Credentials {
    /// The credentials for `host`: `$PSY_REGISTRY_USERNAME` and `$PSY_REGISTRY_PASSWORD` if
    /// both are set, else the `auths` entry for `host` in `$DOCKER_CONFIG/config.json` or
    /// `~/.docker/config.json` (as `docker login` writes it).
    pub fn lookup(host: &str) -> Option<Credentials> {
        if let (Ok(username), Ok(password)) =
            (std::env::var(USERNAME_ENV), std::env::var(PASSWORD_ENV))
        {
            return Some(Credentials { username, password });
        }
        let path = std::env::var_os("DOCKER_CONFIG")
            .map(|d| PathBuf::from(d).join("config.json"))
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
            })?;
        let bytes = std::fs::read(&path).ok()?;
        let found = from_docker_config(&bytes, host);
        if found.is_some() {
            tracing::debug!("credentials for {host} from {}", path.display());
        }
        found
    }
}

/// The `auths` entry of a Docker `config.json` for `host`.
pub(crate) fn from_docker_config(bytes: &[u8], host: &str) -> Option<Credentials> {
    let config: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let auths = config.get("auths")?.as_object()?;
    let wanted = if host == "docker.io" {
        "index.docker.io"
    } else {
        host
    };
    let (_, entry) = auths.iter().find(|(key, _)| {
        let key = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        key.split('/').next() == Some(wanted)
    })?;
    let encoded = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let (username, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(Credentials {
        username: username.into(),
        password: password.into(),
    })
}

/// A parsed `Www-Authenticate` header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// `bearer` or `basic`, lower-cased.
    pub(crate) scheme: String,
    pub(crate) params: Vec<(String, String)>,
}

impl Challenge {
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let mut params = Vec::new();
        let mut rest = rest.trim();
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=')?;
            let after = after.trim_start();
            let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            } else {
                after.split_once(',').map_or((after, ""), |(v, r)| (v, r))
            };
            params.push((key.trim().to_ascii_lowercase(), value.to_string()));
            rest = remaining.trim_start().trim_start_matches(',').trim_start();
        }
        Some(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        })
    }

    pub(crate) fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The `Authorization` header answering `challenge` for pulling `repository`.
pub(crate) fn answer(
    agent: &ureq::Agent,
    challenge: &str,
    credentials: Option<&Credentials>,
    repository: &str,
    image: &str,
    url: &str,
) -> Result<String, ImageError> {
    let auth_error = |url: &str, problem: String| ImageError::Auth {
        image: image.to_string(),
        url: url.to_string(),
        problem,
    };
    let parsed = Challenge::parse(challenge)
        .ok_or_else(|| auth_error(url, format!("unreadable challenge {challenge:?}")))?;
    let basic = |c: &Credentials| {
        let pair = format!("{}:{}", c.username, c.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    match parsed.scheme.as_str() {
        "basic" => credentials.map(basic).ok_or_else(|| {
            auth_error(url, format!("the registry wants a user name and password: set {USERNAME_ENV} and {PASSWORD_ENV}, or `docker login`"))
        }),
        "bearer" => {
            let realm = parsed.param("realm").ok_or_else(|| auth_error(url, "a Bearer challenge without a realm".into()))?;
            let mut token_url = format!("{realm}{}", if realm.contains('?') { '&' } else { '?' });
            if let Some(service) = parsed.param("service") {
                token_url.push_str(&format!("service={}&", encode(service)));
            }
            let default_scope = format!("repository:{repository}:pull");
            token_url.push_str(&format!("scope={}", encode(parsed.param("scope").unwrap_or(&default_scope))));
            let mut request = agent.get(&token_url);
            if let Some(credentials) = credentials {
                request = request.header("Authorization", basic(credentials));
            }
            let mut response = request.call().map_err(|e| auth_error(&token_url, e.to_string()))?;
            let status = response.status().as_u16();
            let body = response.body_mut().read_to_vec().map_err(|e| auth_error(&token_url, e.to_string()))?;
            if !(200..300).contains(&status) {
                let hint = if credentials.is_none() {
                    format!(" (no credentials were sent: set {USERNAME_ENV} and {PASSWORD_ENV}, or `docker login`)")
                } else {
                    String::new()
                };
                return Err(auth_error(
                    &token_url,
                    format!("the token service answered {status}: {}{hint}", String::from_utf8_lossy(&body[..body.len().min(300)])),
                ));
            }
            let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| auth_error(&token_url, format!("the token answer is not JSON: {e}")))?;
            let token = json
                .get("token")
                .or_else(|| json.get("access_token"))
                .and_then(|t| t.as_str())
                .ok_or_else(|| auth_error(&token_url, "the token answer has no `token`".into()))?;
            Ok(format!("Bearer {token}"))
        }
        other => Err(auth_error(url, format!("unsupported authentication scheme {other:?}"))),
    }
}

/// Percent-encodes a query parameter's value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let c = Challenge::parse(r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#).unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.example/token"));
        assert_eq!(c.param("service"), Some("registry.example"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        let c = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(
            (c.scheme.as_str(), c.param("realm")),
            ("basic", Some("Registry Realm"))
        );
        assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }

    #[test]
    fn reads_docker_config_auths() {
        let auth = base64::engine::general_purpose::STANDARD.encode("me:secret");
        let config = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"127.0.0.1:5000":{{"auth":"{auth}"}}}}}}"#
        );
        let found = from_docker_config(config.as_bytes(), "docker.io").unwrap();
        assert_eq!(
            (found.username.as_str(), found.password.as_str()),
            ("me", "secret")
        );
        assert!(from_docker_config(config.as_bytes(), "127.0.0.1:5000").is_some());
        assert!(from_docker_config(config.as_bytes(), "quay.io").is_none());
        assert!(!format!("{found:?}").contains("secret"));
    }
}
