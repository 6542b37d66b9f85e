//! An image config's `User` (`uid`, `uid:gid`, `name`, `name:group`, or a mix) as the ids the
//! test runs as, names looked up in the image's own `/etc/passwd` and `/etc/group` (the
//! top-most layer that has the file; a user's group defaults to its primary group).

use std::path::{Path, PathBuf};

/// `(uid, gid)` for `user`; `None` for root (`root`, `0`, `0:0`). A numeric user the image does
/// not list gets group 0, as with Docker.
pub(crate) fn resolve(user: &str, layers: &[PathBuf]) -> Result<Option<(u32, u32)>, String> {
    let (name, group) = match user.split_once(':') {
        Some((name, group)) => (name, Some(group)),
        None => (user, None),
    };
    let passwd = top_file(layers, "etc/passwd");
    let (uid, primary_gid) = match name.parse::<u32>() {
        // An id the image does not list gets group 0, as Docker gives it.
        Ok(uid) => (
            uid,
            lookup(&passwd, 3, |f| f[2] == name).map_or(Ok(0), |f| parse(f[3]))?,
        ),
        Err(_) => {
            let entry = lookup(&passwd, 3, |f| f[0] == name).ok_or_else(|| {
                format!("User {user:?}: no user {name:?} in the image's /etc/passwd")
            })?;
            (parse(entry[2])?, parse(entry[3])?)
        }
    };
    let gid = match group {
        None => primary_gid,
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let groups = top_file(layers, "etc/group");
                let entry = lookup(&groups, 2, |f| f[0] == group).ok_or_else(|| {
                    format!("User {user:?}: no group {group:?} in the image's /etc/group")
                })?;
                parse(entry[2])?
            }
        },
    };
    Ok((uid, gid) != (0, 0)).map(|not_root| not_root.then_some((uid, gid)))
}

/// The content of `file` in the top-most layer that has it (empty if none does).
fn top_file(layers: &[PathBuf], file: &str) -> String {
    layers
        .iter()
        .rev()
        .map(|layer| Path::new(layer).join(file))
        .find_map(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default()
}

/// The `:`-separated fields of the first line (with more than `min` fields) that `matches`.
fn lookup(text: &str, min: usize, matches: impl Fn(&[&str]) -> bool) -> Option<Vec<&str>> {
    text.lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() > min && matches(fields))
}

fn parse(id: &str) -> Result<u32, String> {
    id.parse()
        .map_err(|_| format!("{id:?} in the image's /etc/passwd or /etc/group is not an id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let (base, top) = (dir.path().join("0"), dir.path().join("1"));
        std::fs::create_dir_all(base.join("etc")).unwrap();
        std::fs::create_dir_all(top.join("etc")).unwrap();
        std::fs::write(
            base.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nold:x:5:5::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            top.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            top.join("etc/group"),
            "root:x:0:\napp:x:1001:\nstaff:x:50:\n",
        )
        .unwrap();
        (dir, vec![base, top])
    }

    #[test]
    fn names_and_ids_resolve_in_the_top_most_files() {
        let (_dir, layers) = layers();
        assert_eq!(resolve("app", &layers).unwrap(), Some((1000, 1001)));
        assert_eq!(resolve("app:staff", &layers).unwrap(), Some((1000, 50)));
        assert_eq!(resolve("1000", &layers).unwrap(), Some((1000, 1001)));
        assert_eq!(resolve("4242:7", &layers).unwrap(), Some((4242, 7)));
        assert_eq!(resolve("4242", &layers).unwrap(), Some((4242, 0)));
        assert_eq!(resolve("root", &layers).unwrap(), None);
        assert_eq!(resolve("0:0", &layers).unwrap(), None);
        // The base layer's user is hidden by the top layer's file.
        assert!(resolve("old", &layers)
            .unwrap_err()
            .contains("no user \"old\""));
        assert!(resolve("app:nogroup", &layers)
            .unwrap_err()
            .contains("no group"));
    }
}
