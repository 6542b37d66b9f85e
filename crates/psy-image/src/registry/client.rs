//! A registry's HTTP API for one repository: GETs under `/v2/<repository>/`, answering an
//! authentication challenge once and reusing the token for every later request.

use super::auth::{self, Credentials};
use crate::reference::RegistryRef;
use crate::{ImageError, PullOptions};
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

pub(crate) struct Client {
    agent: ureq::Agent,
    /// `scheme://host/v2/<repository>`.
    base: String,
    repository: String,
    image: String,
    credentials: Option<Credentials>,
    /// The `Authorization` header that met the last challenge.
    authorization: Mutex<Option<String>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Loopback registries may speak plain HTTP, as Docker allows.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name == "localhost" || name == "::1" || name.starts_with("127.")
}

impl Client {
    pub(crate) fn new(reference: &RegistryRef, opts: &PullOptions) -> Client {
        let image = reference.to_string();
        let (host, repository) = match reference.host.as_str() {
            // Docker Hub's API lives elsewhere than its name, and its official images under library/.
            "docker.io" | "index.docker.io" => (
                "registry-1.docker.io".to_string(),
                if reference.repository.contains('/') {
                    reference.repository.clone()
                } else {
                    format!("library/{}", reference.repository)
                },
            ),
            host => (host.to_string(), reference.repository.clone()),
        };
        let host_only = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        let insecure = opts
            .insecure_registries
            .iter()
            .any(|r| r == &reference.host || r == &host || r == host_only);
        let loopback = is_loopback(&host);
        let scheme = if loopback || insecure {
            "http"
        } else {
            "https"
        };
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .user_agent(concat!("psyduck/", env!("CARGO_PKG_VERSION")));
        if loopback {
            config = config.proxy(None);
        }
        Client {
            agent: config.build().into(),
            base: format!("{scheme}://{host}/v2/{repository}"),
            credentials: opts
                .credentials
                .clone()
                .or_else(|| Credentials::lookup(&reference.host)),
            repository,
            image,
            authorization: Mutex::new(None),
        }
    }

    /// GETs `path` (under the repository), authenticating if challenged.
    pub(crate) fn get(
        &self,
        path: &str,
        accept: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, ImageError> {
        let url = format!("{}/{path}", self.base);
        let response = self.send(&url, accept)?;
        if response.status().as_u16() != 401 {
            return self.check(&url, response);
        }
        let Some(challenge) = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
        else {
            return self.check(&url, response);
        };
        tracing::debug!("image {}: {url} challenged: {challenge}", self.image);
        let header = auth::answer(
            &self.agent,
            challenge,
            self.credentials.as_ref(),
            &self.repository,
            &self.image,
            &url,
        )?;
        *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = Some(header);
        let response = self.send(&url, accept)?;
        self.check(&url, response)
    }

    /// GETs `path` whole (a manifest or config).
    pub(crate) fn get_bytes(
        &self,
        path: &str,
        accept: Option<&str>,
    ) -> Result<(Vec<u8>, Option<String>), ImageError> {
        let url = format!("{}/{path}", self.base);
        let mut response = self.get(path, accept)?;
        let digest = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| self.http_error(&url, e))?;
        Ok((bytes, digest))
    }

    /// GETs `path` as a stream (a layer blob).
    pub(crate) fn get_stream(&self, path: &str) -> Result<Box<dyn Read + Send>, ImageError> {
        Ok(Box::new(self.get(path, None)?.into_body().into_reader()))
    }

    fn send(
        &self,
        url: &str,
        accept: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, ImageError> {
        let mut request = self.agent.get(url);
        if let Some(accept) = accept {
            request = request.header("Accept", accept);
        }
        if let Some(authorization) = self
            .authorization
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            request = request.header("Authorization", authorization);
        }
        request.call().map_err(|e| self.http_error(url, e))
    }

    fn check(
        &self,
        url: &str,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<ureq::http::Response<ureq::Body>, ImageError> {
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let mut body = Vec::new();
        let _ = response
            .body_mut()
            .as_reader()
            .take(2048)
            .read_to_end(&mut body);
        let body = String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(500)
            .collect();
        let hint = match status {
            401 | 403 => " (set PSY_REGISTRY_USERNAME and PSY_REGISTRY_PASSWORD, or `docker login`, if the image is private)",
            404 => " (no such repository, tag or digest in this registry)",
            _ => "",
        };
        Err(ImageError::Registry {
            image: self.image.clone(),
            url: url.to_string(),
            status,
            body,
            hint,
        })
    }

    fn http_error(&self, url: &str, source: ureq::Error) -> ImageError {
        ImageError::Http {
            image: self.image.clone(),
            url: url.to_string(),
            source: Box::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts_speak_http() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(super::is_loopback(host), "{host}");
        }
        for host in ["docker.io", "10.0.0.1:5000", "localhost.example"] {
            assert!(!super::is_loopback(host), "{host}");
        }
    }
}
