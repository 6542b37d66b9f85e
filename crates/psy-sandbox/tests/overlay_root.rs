//! IO throttles on a host whose disk is behind overlayfs (a container's or a Kubernetes pod's
//! root): the scratch area's disk is found through the overlay's upper layer. Needs root (it
//! mounts an overlay, and unmounts it at the end).

use psy_sandbox::cgroup::block_device_of;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

struct Unmount(CString);

impl Drop for Unmount {
    fn drop(&mut self) {
        // SAFETY: plain umount2 of the overlay this test mounted.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

#[test]
fn a_path_on_overlayfs_resolves_to_the_disk_of_its_upper_layer() {
    // SAFETY: trivial getter.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    for d in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir(dir.path().join(d)).unwrap();
    }
    let merged = dir.path().join("merged");
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        dir.path().join("lower").display(),
        dir.path().join("upper").display(),
        dir.path().join("work").display()
    );
    let options = CString::new(options).unwrap();
    // SAFETY: mount(2) with valid C strings.
    let r = unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            cstr(&merged).as_ptr(),
            c"overlay".as_ptr(),
            0,
            options.as_ptr().cast(),
        )
    };
    assert_eq!(r, 0, "mount overlay: {}", std::io::Error::last_os_error());
    let _unmount = Unmount(cstr(&merged));
    std::fs::create_dir(merged.join("scratch")).unwrap();
    let upper_disk = block_device_of(&dir.path().join("upper")).unwrap();
    assert_eq!(
        block_device_of(&merged.join("scratch")).unwrap(),
        upper_disk
    );
}
