//! Template roots: the shared part of a hardened root, built once per user namespace slot.
//!
//! Most of a hardened container's root is the same for every attempt in a slot: the host view
//! (each host mount cloned read-only and id-mapped over the slot's user namespace) and the
//! minimal `/dev`. Building it per container took about a third of a container's start
//! (twenty-odd mount calls, `mknod`s, `pivot_root` and the lazy unmount of the host's root,
//! which waits for an RCU grace period). Here a short-lived helper builds it once in a mount
//! namespace of its own and enters it with `pivot_root`; the namespace is kept as a
//! descriptor. Each container's init then joins it (`setns`) and copies it (`unshare`), and
//! mounts only its own trees on the copy (`build::enter_template`): a private `/tmp`, psy's
//! state masked, the project, scratch, volumes, devpts, `/dev/shm`, `/run`, `/proc`, `/sys`.
//!
//! The namespace is owned by the host's user namespace, as the one a container makes itself,
//! so the test (in its slot's user namespace) can change nothing in it. Slots run one
//! container at a time; nothing an attempt writes lands in the template (every writable tree
//! is mounted on the copy). Rootless containers, whose init is in a new user namespace of its
//! own, keep building the whole root (a namespace cannot be joined from a less privileged
//! one). Templates live as long as the process that made them (the zygote: one run).
//!
//! Containers in an image have a template too, one for all slots ([`image_template`]): a
//! read-only tmpfs as root with the minimal `/dev`, which each attempt binds into its root. The init clones the image's layers (id-mapped over its slot)
//! and its writable directory while it still sees the host, joins and copies the template, and
//! builds its overlay root there (`image_build::enter_image_template`), so that it never copies and
//! tears down the host's whole mount tree.

use super::build;
use super::plan::{OwnTrees, RootPlan};
use super::{HostView, STAGE};
use crate::child::{MSG_LEN, MSG_SETUP_ERROR};
use crate::error::SetupStep;
use crate::sys;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// A template made for one slot (its host root id, `None` without a user namespace) and view;
/// the image template has no view and serves every slot.
struct Template {
    slot_root: Option<u32>,
    view: Option<HostView>,
    ns: OwnedFd,
}

/// Templates made by this process, and the slots whose template could not be made (those
/// build in place, as before; the reason was logged once).
static TEMPLATES: Mutex<Vec<Template>> = Mutex::new(Vec::new());
/// Keyed by slot and whether the template has a view (see [`Template`]).
static FAILED: Mutex<Vec<(Option<u32>, bool)>> = Mutex::new(Vec::new());

/// The mount namespace holding the template root for `view` in the slot `userns` (descriptor
/// and host root id), made on first use; `None` when it cannot be made here, and the
/// container builds its whole root itself.
///
/// The descriptor stays open until the process exits.
pub(crate) fn template_for(view: &HostView, userns: Option<(RawFd, u32)>) -> Option<RawFd> {
    find_or_make(Some(view), userns)
}

/// The mount namespace of the image template (see the module's documentation), made on first
/// use; `None` when it cannot be made here, and image containers build their whole root.
pub(crate) fn image_template() -> Option<RawFd> {
    find_or_make(None, None)
}

fn find_or_make(view: Option<&HostView>, userns: Option<(RawFd, u32)>) -> Option<RawFd> {
    let slot_root = userns.map(|(_, id)| id);
    let mut made = TEMPLATES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = made
        .iter()
        .find(|t| t.slot_root == slot_root && t.view.as_ref() == view)
    {
        return Some(t.ns.as_raw_fd());
    }
    let mut failed = FAILED.lock().unwrap_or_else(|e| e.into_inner());
    let key = (slot_root, view.is_some());
    if failed.contains(&key) {
        return None;
    }
    match make(view, userns) {
        Ok(ns) => {
            let fd = ns.as_raw_fd();
            made.push(Template {
                slot_root,
                view: view.cloned(),
                ns,
            });
            Some(fd)
        }
        Err(reason) => {
            let which = match view {
                Some(_) => format!("slot {slot_root:?}"),
                None => "images".to_owned(),
            };
            tracing::warn!(
                "containers build their whole root at each start (slower): no template root for \
                 {which}: {reason}"
            );
            failed.push(key);
            None
        }
    }
}

/// Builds a template (for `view`, or the image template) in a helper process's new mount
/// namespace and keeps that namespace.
fn make(view: Option<&HostView>, userns: Option<(RawFd, u32)>) -> Result<OwnedFd, String> {
    let plan = view
        .map(|view| RootPlan::new(view, &[], false, userns.is_some(), STAGE, None, false))
        .transpose()
        .map_err(|e| format!("planning it: {e}"))?;
    let image_dev = OwnTrees::new(STAGE).map_err(|e| format!("planning it: {e}"))?;
    let userns_fd = userns.map_or(-1, |(fd, _)| fd);
    let pipe = || sys::pipe(0).map_err(|e| format!("a pipe: {e}"));
    let (status_rx, status_tx) = pipe()?;
    let (hold_rx, hold_tx) = pipe()?;
    let mut args = sys::CloneArgs {
        flags: libc::CLONE_NEWNS as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: fork-like clone; the child only makes raw syscalls on data prepared above and
    // never returns.
    let pid = unsafe { sys::clone3(&mut args) };
    if pid == 0 {
        // SAFETY: we are the child; every input was made before the clone.
        unsafe {
            let status = status_tx.as_raw_fd();
            libc::close(status_rx.as_raw_fd());
            libc::close(hold_tx.as_raw_fd());
            match &plan {
                Some(plan) => build::build_template(plan, userns_fd, status),
                None => super::image_build::build_image_template(&image_dev, status),
            }
            // Ready: a message of kind 0. Then hold the namespace until the parent has it.
            let ready = [0u8; MSG_LEN];
            libc::write(status, ready.as_ptr().cast(), MSG_LEN);
            let mut byte = 0u8;
            libc::read(hold_rx.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
            libc::_exit(0);
        }
    }
    if pid < 0 {
        return Err(format!(
            "cloning its builder: {}",
            std::io::Error::last_os_error()
        ));
    }
    let pid = pid as libc::pid_t;
    drop(status_tx);
    drop(hold_rx);
    let result = read_message(&status_rx).and_then(|msg| {
        let kind = i32::from_ne_bytes([msg[0], msg[1], msg[2], msg[3]]);
        if kind == MSG_SETUP_ERROR {
            let step = i32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
            let errno = i32::from_ne_bytes([msg[8], msg[9], msg[10], msg[11]]);
            let what = SetupStep::from_code(step).map_or("building it", SetupStep::describe);
            return Err(format!(
                "{what}: {}",
                std::io::Error::from_raw_os_error(errno)
            ));
        }
        let path = CString::new(format!("/proc/{pid}/ns/mnt")).expect("no NUL in a number");
        // SAFETY: plain open of a C string path.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!(
                "opening its namespace: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: a new descriptor we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    });
    drop(hold_tx);
    let mut wstatus = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut wstatus, libc::__WALL) };
    result
}

/// One status message from the builder; an error when it exited without one.
fn read_message(rx: &OwnedFd) -> Result<[u8; MSG_LEN], String> {
    let mut msg = [0u8; MSG_LEN];
    loop {
        // SAFETY: reading into our own buffer.
        let n = unsafe { libc::read(rx.as_raw_fd(), msg.as_mut_ptr().cast(), MSG_LEN) };
        if n == MSG_LEN as isize {
            return Ok(msg);
        }
        let err = std::io::Error::last_os_error();
        if n < 0 && err.kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return Err(format!("its builder exited without a word ({n} bytes)"));
    }
}
