//! [`FleetClient`]: JSON and bytes over HTTP with a bearer token, one kept-alive agent.

use crate::FleetError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

/// A server's base address, checked: `http(s)://host[:port]` with an optional path prefix,
/// without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl(String);

impl ServerUrl {
    /// Checks `url`.
    pub fn parse(url: &str) -> Result<ServerUrl, FleetError> {
        let bad = |reason: &str| FleetError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| bad("must start with http:// or https://"))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(bad("no host"));
        }
        Ok(ServerUrl(url.trim_end_matches('/').to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client of one server with one token. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct FleetClient {
    base: ServerUrl,
    authorization: String,
    agent: ureq::Agent,
}

impl FleetClient {
    /// A client of `base` sending `token` as `Authorization: Bearer TOKEN`; a request may
    /// take up to 300 s.
    pub fn new(base: ServerUrl, token: &str) -> FleetClient {
        FleetClient {
            base,
            authorization: format!("Bearer {}", token.trim()),
            agent: agent(Duration::from_secs(300)),
        }
    }

    /// The same client with requests given up after `timeout` (a transient failure): an agent
    /// retries a heartbeat rather than wait on a server that stopped answering.
    pub fn with_timeout(mut self, timeout: Duration) -> FleetClient {
        self.agent = agent(timeout);
        self
    }

    pub fn base(&self) -> &ServerUrl {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path`, the answer parsed as JSON.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, FleetError> {
        let url = self.url(path);
        let response = self
            .agent
            .get(&url)
            .header("Authorization", &self.authorization)
            .call();
        decode("GET", url, response)
    }

    /// `POST path` with `body` as JSON, the answer parsed as JSON.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, FleetError> {
        let url = self.url(path);
        let response = self
            .agent
            .post(&url)
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/json")
            .send(&json(body)?);
        decode("POST", url, response)
    }

    /// `PUT path` with raw bytes (a blob), the answer parsed as JSON.
    pub fn put_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        bytes: &[u8],
    ) -> Result<T, FleetError> {
        let url = self.url(path);
        let response = self
            .agent
            .put(&url)
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/octet-stream")
            .send(bytes);
        decode("PUT", url, response)
    }

    /// `GET path` as raw bytes (a blob).
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, FleetError> {
        let url = self.url(path);
        let response = self
            .agent
            .get(&url)
            .header("Authorization", &self.authorization)
            .call();
        let mut response = answered("GET", &url, response)?;
        response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|e| FleetError::Decode {
                method: "GET",
                url,
                reason: e.to_string(),
            })
    }
}

/// A kept-alive HTTP agent whose requests end after `timeout`.
fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10).min(timeout)))
        .timeout_global(Some(timeout))
        .user_agent(concat!("psyduck/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// The response if it has a success status, else the error naming the request.
fn answered(
    method: &'static str,
    url: &str,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<ureq::http::Response<ureq::Body>, FleetError> {
    let mut response = response.map_err(|source| FleetError::Unreachable {
        method,
        url: url.to_string(),
        source: Box::new(source),
    })?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let body = response.body_mut().read_to_string().unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string());
    Err(FleetError::Refused {
        method,
        url: url.to_string(),
        status,
        message,
    })
}

/// The JSON answer of a successful request.
fn decode<T: DeserializeOwned>(
    method: &'static str,
    url: String,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<T, FleetError> {
    let mut response = answered(method, &url, response)?;
    response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()))
        .map_err(|reason| FleetError::Decode {
            method,
            url,
            reason,
        })
}

/// `body` as JSON bytes.
fn json<B: Serialize>(body: &B) -> Result<Vec<u8>, FleetError> {
    serde_json::to_vec(body).map_err(|e| FleetError::Decode {
        method: "POST",
        url: String::new(),
        reason: format!("cannot encode the request: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_checked() {
        assert_eq!(
            ServerUrl::parse("http://127.0.0.1:8080/").unwrap().as_str(),
            "http://127.0.0.1:8080"
        );
        assert!(ServerUrl::parse("https://psy.example/prefix").is_ok());
        let err = ServerUrl::parse("127.0.0.1:8080").unwrap_err().to_string();
        assert!(err.contains("http://"), "{err}");
        assert!(ServerUrl::parse("http://").is_err());
    }

    #[test]
    fn an_unreachable_server_is_transient_and_named() {
        // Port 9 on loopback: nothing listens (discard), so the connection is refused.
        let client = FleetClient::new(ServerUrl::parse("http://127.0.0.1:9").unwrap(), "t");
        let err = client.get::<serde_json::Value>("/healthz").unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(
            err.to_string().contains("GET http://127.0.0.1:9/healthz"),
            "{err}"
        );
    }
}
