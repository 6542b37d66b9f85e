//! A `psy server` child process on a free port against a test schema, and tokens made by
//! `psy server token create`. Shared by the test binaries that need a server (`#[path]`-included).

use psy_server::testkit::TestSchema;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};

/// Runs `psy ARGS --schema SCHEMA` against the test database; panics unless it succeeds.
pub(crate) fn psy_ok(schema: &TestSchema, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_psy"))
        .args(args)
        .args(["--schema", &schema.name])
        .env("PSY_DATABASE_URL", &schema.url)
        .output()
        .unwrap_or_else(|e| panic!("running psy {args:?}: {e}"));
    assert!(
        output.status.success(),
        "psy {args:?}: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A new token of `role` named `name`: the last line `psy server token create` prints.
pub(crate) fn create_token(schema: &TestSchema, role: &str, name: &str) -> String {
    let created = psy_ok(
        schema,
        &["server", "token", "create", "--role", role, "--name", name],
    );
    let stdout = String::from_utf8(created.stdout).expect("UTF-8");
    stdout
        .lines()
        .last()
        .expect("a last line")
        .trim()
        .to_string()
}

/// A running `psy server`, killed if the test ends before stopping it.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Server {
    /// Starts `psy server` on a free port of 127.0.0.1 and reads its address.
    pub(crate) fn start(schema: &TestSchema) -> Server {
        Server::start_at(schema, "127.0.0.1:0")
    }

    /// Starts `psy server` listening on `listen` and reads its address.
    pub(crate) fn start_at(schema: &TestSchema, listen: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_psy"))
            .args(["server", "--listen", listen, "--schema", &schema.name])
            .env("PSY_DATABASE_URL", &schema.url)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting psy server");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut first)
            .expect("reading the server's first line");
        let addr: SocketAddr = first
            .trim()
            .strip_prefix("psy server: listening on http://")
            .unwrap_or_else(|| panic!("first line: {first:?}"))
            .parse()
            .unwrap_or_else(|e| panic!("address in {first:?}: {e}"));
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
