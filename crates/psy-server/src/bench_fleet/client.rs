//! A minimal HTTP/1.1 client over one kept-alive connection: what a benchmark agent needs to
//! call the API many times without measuring connection set-up (no client crate is built here).

use super::FleetBenchError;
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One connection to the server, authenticated with one token.
#[derive(Debug)]
pub(crate) struct Connection {
    addr: SocketAddr,
    token: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Connection {
    /// A connection to `addr` sending `token`; opened on the first request.
    pub(crate) fn new(addr: SocketAddr, token: &str) -> Connection {
        Connection {
            addr,
            token: token.to_string(),
            stream: None,
        }
    }

    /// Sends `method path` with `body` as JSON (if any); the status and body of the answer.
    /// A connection the server closed is opened again once.
    pub(crate) async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, Vec<u8>), String> {
        let reused = self.stream.is_some();
        match self.try_call(method, path, body).await {
            Err(_) if reused => {
                self.stream = None;
                self.try_call(method, path, body).await
            }
            other => other,
        }
        .map_err(|e| format!("{method} http://{}{path}: {e}", self.addr))
    }

    /// Posts `body` to `path`; the 200 answer parsed, or why there was none.
    pub(crate) async fn post<T: serde::de::DeserializeOwned>(
        &mut self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, FleetBenchError> {
        let body = body.to_string();
        let (status, answer) = self
            .call("POST", path, Some(body.as_bytes()))
            .await
            .map_err(FleetBenchError::Http)?;
        let refused = |detail: String| FleetBenchError::Refused {
            request: format!("POST {path}"),
            status,
            body: detail,
        };
        if status != 200 {
            return Err(refused(String::from_utf8_lossy(&answer).into_owned()));
        }
        serde_json::from_slice(&answer).map_err(|e| refused(format!("unexpected answer: {e}")))
    }

    async fn try_call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(BufReader::new(stream));
        }
        let Some(stream) = self.stream.as_mut() else {
            unreachable!("opened above");
        };
        let body = body.unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            self.token,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        stream.get_mut().write_all(&request).await?;
        let answer = read_answer(stream).await;
        if answer.is_err() {
            self.stream = None;
        }
        answer
    }
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

/// Reads one answer with a `Content-Length` body.
async fn read_answer(stream: &mut BufReader<TcpStream>) -> std::io::Result<(u16, Vec<u8>)> {
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("no status in {line:?}")))?;
    let mut length = None;
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let length = length.ok_or_else(|| invalid("an answer without Content-Length".into()))?;
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok((status, body))
}
