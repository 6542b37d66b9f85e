//! Pulls from a real registry (Debian's `docker-registry` on a free loopback port), with the
//! test image pushed by `skopeo` in gzip and zstd, and through a token-auth front that makes
//! the client go through the `Www-Authenticate: Bearer` flow. Skipped (with the reason
//! printed) when either tool is missing, except under CI, where it fails.

use crate::support::{check_two_layers, two_layer_image, Recorder};
use psy_image::testing::TestRegistry as Registry;
use psy_image::{Credentials, ImageError, ImageRef, ImageStore, PullOptions, PullPolicy};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The test image as a docker-archive in the registry's scratch directory.
fn archive(registry: &Registry) -> PathBuf {
    let path = registry.dir().join("image.tar");
    if !path.exists() {
        two_layer_image().write_docker_archive(&path, Some("localhost/psy-test:1"));
    }
    path
}

fn pull(
    store: &ImageStore,
    value: &str,
    opts: &PullOptions,
    progress: &Recorder,
) -> Result<psy_image::ResolvedImage, ImageError> {
    store.resolve(
        &ImageRef::parse(value, Path::new("/")).unwrap(),
        opts,
        progress,
    )
}

#[test]
fn pulls_gzip_and_zstd_images_then_hits_the_cache() {
    let Some(registry) = Registry::start() else {
        return;
    };
    // A registry of its own for zstd: skopeo (its blob-info cache) would otherwise reuse the
    // gzip blobs the first registry already has rather than recompress.
    let Some(zstd_registry) = Registry::start() else {
        return;
    };
    let archive = archive(&registry);
    registry.push(&archive, "psy/test:gzip", &[]);
    zstd_registry.push(
        &archive,
        "psy/test:zstd",
        &["--format", "oci", "--dest-compress-format", "zstd"],
    );
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("store")).unwrap();
    let opts = PullOptions::default();
    let progress = Recorder::default();
    let gzip = pull(
        &store,
        &format!("{}/psy/test:gzip", registry.host()),
        &opts,
        &progress,
    )
    .unwrap();
    check_two_layers(&gzip.layers);
    assert_eq!(gzip.config.working_dir.as_deref(), Some("/work"));
    assert_eq!(progress.counts(), (2, 0));
    // zstd blobs are other blobs of the same tars: the unpacked layers are reused.
    let zstd = pull(
        &store,
        &format!("{}/psy/test:zstd", zstd_registry.host()),
        &opts,
        &progress,
    )
    .unwrap();
    assert_ne!(zstd.digest, gzip.digest);
    assert_eq!(zstd.layers, gzip.layers);
    let blob_types = std::fs::read_to_string(
        dir.path()
            .join("store/images")
            .join(format!("{}.json", &zstd.digest[7..])),
    )
    .unwrap();
    assert!(blob_types.contains("tar+zstd"), "{blob_types}");
    // By digest, and once the registry is gone: the store answers without the network.
    let by_digest = format!("{}/psy/test@{}", registry.host(), gzip.digest);
    assert_eq!(pull(&store, &by_digest, &opts, &progress).unwrap(), gzip);
    let always = PullOptions {
        policy: PullPolicy::Always,
        ..PullOptions::default()
    };
    assert_eq!(
        pull(
            &store,
            &format!("{}/psy/test:gzip", registry.host()),
            &always,
            &progress
        )
        .unwrap(),
        gzip
    );
    assert_eq!(progress.counts().0, 2, "nothing unpacked twice");
    let host = registry.host();
    drop(registry);
    assert_eq!(
        pull(&store, &format!("{host}/psy/test:gzip"), &opts, &progress).unwrap(),
        gzip
    );
    let error = pull(&store, &format!("{host}/psy/test:gzip"), &always, &progress).unwrap_err();
    assert!(matches!(error, ImageError::Http { .. }), "{error}");
}

#[test]
fn unknown_tags_and_repositories_are_named() {
    let Some(registry) = Registry::start() else {
        return;
    };
    registry.push(&archive(&registry), "psy/test:1", &[]);
    let store = ImageStore::open(registry.dir().join("store")).unwrap();
    let message = pull(
        &store,
        &format!("{}/psy/test:nope", registry.host()),
        &PullOptions::default(),
        &Recorder::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("answered 404")
            && message.contains("manifests/nope")
            && message.contains("no such repository, tag"),
        "{message}"
    );
}

#[test]
fn bearer_token_flow_against_a_token_server() {
    let Some(registry) = Registry::start() else {
        return;
    };
    registry.push(&archive(&registry), "psy/private:1", &[]);
    let front = TokenFront::start(registry.port());
    let store = ImageStore::open(registry.dir().join("store")).unwrap();
    let value = format!("127.0.0.1:{}/psy/private:1", front.port);
    let error = pull(
        &store,
        &value,
        &PullOptions::default(),
        &Recorder::default(),
    )
    .unwrap_err();
    assert!(matches!(error, ImageError::Auth { .. }), "{error}");
    assert!(
        error.to_string().contains("answered 401")
            && error.to_string().contains("PSY_REGISTRY_USERNAME"),
        "{error}"
    );
    let opts = PullOptions {
        credentials: Some(Credentials {
            username: "tester".into(),
            password: "s3cret".into(),
        }),
        ..PullOptions::default()
    };
    let resolved = pull(&store, &value, &opts, &Recorder::default()).unwrap();
    check_two_layers(&resolved.layers);
    let seen = front.seen.lock().unwrap().clone();
    let token_requests: Vec<&String> = seen.iter().filter(|r| r.starts_with("/token")).collect();
    assert!(
        token_requests.iter().any(|r| r.contains("service=psy-test")
            && r.contains("scope=repository%3Apsy%2Fprivate%3Apull")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|r| r.contains("/blobs/") && r.ends_with("bearer")),
        "blobs fetched with the token: {seen:?}"
    );
}

/// A token-auth front for a registry: `/token` hands a token for basic credentials
/// tester:s3cret; every other request needs that token and is forwarded to the registry.
struct TokenFront {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

const TOKEN: &str = "t0k3n-for-psy";

impl TokenFront {
    fn start(registry_port: u16) -> TokenFront {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || serve(stream, port, registry_port, &log));
            }
        });
        TokenFront { port, seen }
    }
}

fn serve(mut client: TcpStream, port: u16, registry_port: u16, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        headers.push(line.trim_end().to_string());
    }
    let header = |name: &str| {
        headers.iter().find_map(|h| {
            h.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        })
    };
    let authorization = header("authorization").unwrap_or_default();
    let reply = |client: &mut TcpStream, status: &str, extra: &str, body: &str| {
        let _ = write!(
            client,
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    };
    if path.starts_with("/token") {
        log.lock().unwrap().push(path.clone());
        use base64::Engine as _;
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("tester:s3cret")
        );
        if authorization == expected {
            reply(
                &mut client,
                "200 OK",
                "Content-Type: application/json\r\n",
                &format!(r#"{{"token":"{TOKEN}"}}"#),
            );
        } else {
            reply(
                &mut client,
                "401 Unauthorized",
                "",
                r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
            );
        }
        return;
    }
    let authorised = authorization == format!("Bearer {TOKEN}");
    log.lock().unwrap().push(format!(
        "{path} {}",
        if authorised { "bearer" } else { "anonymous" }
    ));
    if !authorised {
        let challenge = format!(
            "Www-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"psy-test\",scope=\"repository:psy/private:pull\"\r\n"
        );
        reply(&mut client, "401 Unauthorized", &challenge, "");
        return;
    }
    let mut upstream = TcpStream::connect(("127.0.0.1", registry_port)).unwrap();
    let accept = header("accept")
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(upstream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{registry_port}\r\n{accept}Connection: close\r\n\r\n").unwrap();
    let mut response = Vec::new();
    let _ = upstream.read_to_end(&mut response);
    let _ = client.write_all(&response);
}
