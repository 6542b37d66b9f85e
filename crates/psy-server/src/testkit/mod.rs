//! Test support shared by this crate's tests and psy-cli's: the test database (from
//! `PSY_TEST_POSTGRES_URL`, as psy-store's tests), a schema per test, and a tiny blocking HTTP
//! client. Not part of the API.
//!
//! Without a reachable database the tests skip with a printed reason, except under CI (`CI`
//! set), where they fail: a CI that silently tests nothing must not pass.

pub mod cluster;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};

/// The variable naming the test server (`scripts/postgres-test-server` sets it).
pub const URL_ENV: &str = "PSY_TEST_POSTGRES_URL";

/// Runs `future` to completion on a runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for a test")
        .block_on(future)
}

/// The test database's URL, or `None` (after saying why) when tests may skip.
pub fn postgres_url() -> Option<String> {
    let reason = match std::env::var(URL_ENV) {
        Ok(url) => {
            let described = crate::Database::new(&url, "psyduck", 1)
                .map(|db| db.described().to_string())
                .unwrap_or_else(|_| "(unparsable URL)".to_string());
            match block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls)) {
                Ok(_) => return Some(url),
                Err(e) => format!("cannot connect to {URL_ENV}={described}: {e}"),
            }
        }
        Err(_) => format!("{URL_ENV} is not set (scripts/postgres-test-server starts a server)"),
    };
    if std::env::var_os("CI").is_some() {
        panic!("PostgreSQL tests cannot run under CI: {reason}");
    }
    eprintln!("skipping a PostgreSQL test: {reason}");
    None
}

/// A schema of its own for one test, dropped when the test ends, pass or fail.
#[derive(Debug)]
pub struct TestSchema {
    pub url: String,
    pub name: String,
}

impl TestSchema {
    /// A fresh schema on the test database, or `None` when tests may skip.
    pub fn new() -> Option<TestSchema> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let url = postgres_url()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "psy_server_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Some(TestSchema { url, name })
    }

    /// A pool on this schema.
    pub fn database(&self) -> crate::Database {
        crate::Database::new(&self.url, &self.name, 4).expect("the test database URL")
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let dropped = block_on(async {
            let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            client.batch_execute(&sql).await
        });
        if let Err(e) = dropped {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The status line and headers, as received.
    pub head: String,
    pub body: String,
}

impl Answer {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then_some(value.trim())
        })
    }
}

/// Sends one HTTP/1.1 request to `addr` and reads the whole answer.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<&str>,
) -> Answer {
    let context = format!("{method} http://{addr}{path}");
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{context}: {e}"));
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = json.unwrap_or("");
    if json.is_some() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    let mut raw = String::new();
    stream
        .read_to_string(&mut raw)
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{context}: no end of headers in {raw:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{context}: no status in {head:?}"));
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}
