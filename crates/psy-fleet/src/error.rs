//! What can go wrong talking to the server, naming the request.

/// A failed call to the server.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A server address that is not `http://host[:port][/prefix]` or `https://...`.
    #[error("server address {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// No answer: connection refused or reset, timeout, DNS.
    #[error("{method} {url}: {source}")]
    Unreachable {
        method: &'static str,
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    /// The server answered with an error status; `message` is its `error` field or body.
    #[error("{method} {url}: the server answered {status}: {message}")]
    Refused {
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    /// An answer that is not the JSON expected.
    #[error("{method} {url}: unreadable answer: {reason}")]
    Decode {
        method: &'static str,
        url: String,
        reason: String,
    },
}

impl FleetError {
    /// The status the server answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            FleetError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth trying again after a pause: the server was unreachable or is unavailable (a
    /// restart, its database restarting). Refusals (401, 404, 409, 400) are final.
    pub fn is_transient(&self) -> bool {
        match self {
            FleetError::Unreachable { .. } => true,
            FleetError::Refused { status, .. } => matches!(status, 500 | 502 | 503 | 504),
            _ => false,
        }
    }
}
