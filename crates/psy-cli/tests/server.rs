//! `psy server` end to end through the binary (feature `server`), against a real PostgreSQL
//! (`PSY_TEST_POSTGRES_URL`; `scripts/postgres-test-server` starts one): a token printed by
//! `psy server token create` opens the API of a running `psy server`, `token revoke` closes it,
//! and SIGTERM stops the server cleanly. Skips without a database, except under CI.
#![cfg(feature = "server")]

#[path = "common/psy_server.rs"]
mod psy_server_child;

use psy_server::testkit::{http, TestSchema};
use psy_server_child::{create_token, psy_ok as psy, Server};
use std::process::Command;

#[test]
fn a_created_token_opens_a_running_server_until_revoked() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let token = create_token(&schema, "user", "e2e");
    assert_eq!(token.len(), 43, "the last line is the token: {token:?}");

    let mut server = Server::start(&schema);
    let addr = server.addr;

    let me = http(addr, "GET", "/api/whoami", Some(&token), None);
    assert_eq!(me.status, 200, "{}", me.body);
    let me: serde_json::Value = serde_json::from_str(&me.body).expect("JSON");
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("e2e"), Some("user"))
    );
    assert_eq!(http(addr, "GET", "/api/whoami", None, None).status, 401);

    let listed = psy(&schema, &["server", "token", "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains("e2e") && !listed.contains(&token),
        "{listed}"
    );

    psy(&schema, &["server", "token", "revoke", "e2e"]);
    let after = http(addr, "GET", "/api/whoami", Some(&token), None);
    assert_eq!(after.status, 401, "a revoked token: {}", after.body);

    // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
    let sent = unsafe { libc::kill(server.child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0, "sending SIGTERM");
    let status = server.child.wait().expect("waiting for psy server");
    assert!(status.success(), "psy server after SIGTERM: {status}");
}

#[test]
fn an_unknown_role_is_refused_by_the_command_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_psy"))
        .args([
            "server",
            "token",
            "create",
            "--database",
            "postgres://h/d",
            "--role",
            "admin",
        ])
        .output()
        .expect("running psy");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("admin") && stderr.contains("agent"),
        "{stderr}"
    );
}

/// `--database` after a subcommand is that subcommand's, a missing one is a usage error, and a
/// database that is down is named without its password. Needs no PostgreSQL.
#[test]
fn database_arguments_and_errors() {
    let psy = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_psy"))
            .args(args)
            .env_remove("PSY_DATABASE_URL")
            .output()
            .expect("running psy")
    };
    let missing = psy(&["server", "token", "list"]);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("--database URL or set PSY_DATABASE_URL"),
        "{stderr}"
    );

    let down = psy(&[
        "server",
        "token",
        "list",
        "--database",
        "postgres://u:s3cret@127.0.0.1:1/x",
    ]);
    assert_eq!(down.status.code(), Some(3), "{down:?}");
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(
        stderr.contains("cannot connect to postgres://u@127.0.0.1:1/x"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
