//! `psy calibrate`: it measures the disk behind a directory and writes the host file, and
//! `psy run` admits IO throttles against that file, the manifest's `[host] io` winning key by key.

use crate::support::{root, Out, Project};
use std::path::Path;

fn psy_with_host_file(p: &Project, host_file: &Path, args: &[&str]) -> Out {
    let mut cmd = p.command(args);
    cmd.env("PSY_HOST_FILE", host_file);
    Out::of(cmd)
}

#[test]
fn calibrate_writes_the_host_file_that_run_admits_against() {
    let p = Project::empty();
    let host_file = p.dir().join("etc/host.toml");
    // What calibrate does not measure stays in the file it rewrites.
    p.file(
        "etc/host.toml",
        "[io]\nread-iops = 1\n[images]\ninsecure-registries = [\"lab:5000\"]\n",
    );
    let dir = p.dir().to_str().unwrap();
    let out = psy_with_host_file(
        &p,
        &host_file,
        &["calibrate", "--seconds", "1", "--dir", dir],
    );
    out.code(0);
    for shown in ["write-bps", "read-iops", "16 threads", "wrote "] {
        assert!(out.stdout.contains(shown), "{shown:?} not in\n{out}");
    }
    let text = std::fs::read_to_string(&host_file).unwrap();
    assert!(
        text.starts_with("# written by `psy calibrate` on ") && text.contains(dir),
        "{text}"
    );
    let file = psy_config::host_file::load(&host_file)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .expect("the host file exists");
    assert_eq!(file.images.insecure_registries, ["lab:5000"], "{text}");
    let io = file.io;
    let figures = [io.read_bps, io.write_bps, io.read_iops, io.write_iops];
    assert!(figures.iter().all(|f| f.is_some_and(|n| n > 0)), "{io:?}");
    assert!(
        !std::fs::read_dir(p.dir()).unwrap().flatten().any(|e| e
            .file_name()
            .to_string_lossy()
            .starts_with(".psy-calibrate")),
        "the scratch file is gone"
    );

    // A test asking for more than the calibrated write rate could never start: refused up front.
    let too_much = io.write_bps.unwrap() + (1 << 20);
    let test = format!(
        "[[test]]\nname = \"hog\"\ncommand = [\"true\"]\nio = {{ write-bps = {too_much} }}\n"
    );
    let hog = Project::new(&test);
    let out = psy_with_host_file(&hog, &host_file, &["run"]);
    out.code(2);
    assert!(
        out.stderr.contains("hog") && out.stderr.contains("io write-bps"),
        "{out}"
    );

    // The manifest's own `[host] io` key wins over the host file.
    if !root() {
        return;
    }
    let allowed = Project::new(&format!(
        "[host]\nio = {{ write-bps = {} }}\n\n{test}",
        too_much * 2
    ));
    psy_with_host_file(&allowed, &host_file, &["run"]).code(0);
}

#[test]
fn a_bad_host_file_stops_the_run_naming_its_line_and_key() {
    let p = Project::new("[[test]]\nname = \"t\"\ncommand = [\"true\"]\n");
    let host_file = p.dir().join("host.toml");
    std::fs::write(&host_file, "# by hand\n[io]\nwrite-bsp = \"10MiB\"\n").unwrap();
    let out = psy_with_host_file(&p, &host_file, &["run"]);
    out.code(2);
    let at = format!("{}:3:1: io.write-bsp", host_file.display());
    assert!(out.stderr.contains(&at), "{at:?} not in\n{out}");
}

#[test]
fn calibrate_refuses_a_directory_without_a_disk() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("skipped: no /dev/shm");
        return;
    }
    let p = Project::empty();
    let host_file = p.dir().join("host.toml");
    let out = psy_with_host_file(&p, &host_file, &["calibrate", "--dir", "/dev/shm"]);
    out.code(2);
    assert!(out.stderr.contains("/dev/shm"), "{out}");
    assert!(!host_file.exists(), "nothing written");
}
