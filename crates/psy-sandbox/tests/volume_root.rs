//! Volumes whose mount point the host lacks (`/data` on a host without `/data`), as root: the
//! container gets a root of its own with the mount point in it, the host's files stay visible
//! and read-only, psy's masks hold, and nothing is created on the host.

mod support;

use std::path::{Path, PathBuf};
use support::Fixture;

/// A top-level path that does not exist on the host, unique to this test process.
fn absent(name: &str) -> PathBuf {
    let path = PathBuf::from(format!("/psy-vol-test-{}-{name}", std::process::id()));
    assert!(!path.exists(), "{} exists on the host", path.display());
    path
}

#[test]
fn a_volume_where_the_host_has_no_directory_keeps_its_data_and_leaves_the_host_alone() {
    require_root!();
    let f = Fixture::new();
    let top = absent("top");
    let data = top.join("data");
    // Below an existing directory too: /usr is rebuilt there, not hidden.
    let nested = PathBuf::from(format!("/usr/psy-vol-test-{}/cache", std::process::id()));
    assert!(!nested.parent().unwrap().exists());
    let (first, second) = (f.project().join("data.img"), f.project().join("cache.img"));
    for image in [&first, &second] {
        psy_sandbox::format_image(image, 16 << 20).unwrap();
    }
    // psy's state directory, masked, with a file the test must not see.
    let state = f.project().join(".psyduck");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("secret"), "store").unwrap();

    let run = |script: &str| {
        let (mut spec, out) = f.spec(script);
        spec.volumes = vec![
            (first.clone(), data.clone()),
            (second.clone(), nested.clone()),
        ];
        spec.masked = vec![state.clone()];
        let mut c = f.sandbox.spawn(spec, &support::limits()).unwrap();
        c.wait_timeout(None).unwrap();
        let o = c.finish();
        let out = std::fs::read_to_string(out).unwrap();
        assert!(o.setup_error.is_none(), "{:?}\n{out}", o.setup_error);
        assert_eq!(o.exit.code, Some(0), "{out}");
        out
    };
    let out = run(&format!(
        // (`! cmd` would not stop `set -e`: each refused write exits with its own code instead.)
        "set -e; echo first > {data}/file; echo cached > {nested}/file; \
         touch /psy-new 2>/dev/null && exit 11; touch {top}/x 2>/dev/null && exit 12; \
         mkdir /usr/psy-new 2>/dev/null && exit 13; touch /etc/psy-new 2>/dev/null && exit 14; \
         umount -l /tmp 2>/dev/null && exit 15; umount -l {data} 2>/dev/null && exit 16; \
         test -x /bin/sh && test -r /etc/passwd && test -d /usr/bin; test ! -e /tmp/usr; \
         test -z \"$(ls -A $PROJECT/.psyduck)\"; test -f $PROJECT/data.img; \
         echo tmp > /tmp/ok && test -w $PSY_SCRATCH; grep -c ' {data} ' /proc/self/mountinfo",
        data = data.display(),
        nested = nested.display(),
        top = top.display(),
    ));
    assert_eq!(out.trim(), "1", "the volume is mounted once: {out}");
    let out = run(&format!(
        "cat {}/file {}/file; ls /proc/self/ns/ >/dev/null && test -c /dev/null",
        data.display(),
        nested.display()
    ));
    assert_eq!(out, "first\ncached\n");
    assert!(!top.exists(), "{} was created on the host", top.display());
    assert!(!nested.parent().unwrap().exists(), "created on the host");
    assert_eq!(
        std::fs::read_to_string(state.join("secret")).unwrap(),
        "store"
    );
}

#[test]
fn paths_no_root_can_have_are_refused_naming_them() {
    require_root!();
    let f = Fixture::new();
    let image = f.project().join("v.img");
    psy_sandbox::format_image(&image, 16 << 20).unwrap();
    // Why a container with a volume at `path` cannot start.
    let refusal = |path: &Path, privileged: bool| {
        let (mut spec, _) = f.spec("true");
        spec.volumes = vec![(image.clone(), path.to_path_buf())];
        spec.privileged = privileged;
        let err = f.sandbox.spawn(spec, &support::limits()).unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains(&format!("volume path {}", path.display())),
            "{err}"
        );
        err
    };
    let file = f.project().join("plain");
    std::fs::write(&file, "").unwrap();
    let err = refusal(&file.join("data"), false);
    assert!(err.contains("not a directory"), "{err}");
    assert!(file.is_file());
    // A privileged test sees the host's root in place: no root of its own.
    let err = refusal(&absent("privileged").join("data"), true);
    assert!(err.contains("privileged"), "{err}");
}
