//! What the selected tests ask of the project, checked before anything runs so that a typo
//! fails the run (exit 2), not every attempt.

use super::error::PrepareError;
use crate::layout::StateDir;
use psy_model::TestSpec;

/// At most `MAX_VOLUMES` volumes a test; every `writable` and `readonly` directory exists,
/// neither holds nor lies in psy's state (also through a symbolic link) and fits the per-test
/// limit.
pub(crate) fn writable(tests: &[TestSpec], state: &StateDir) -> Result<(), PrepareError> {
    let state_root = std::fs::canonicalize(state.root()).unwrap_or(state.root().to_path_buf());
    for test in tests {
        if test.volumes.len() > psy_sandbox::MAX_VOLUMES {
            return Err(PrepareError::TooManyVolumes {
                test: test.id.to_string(),
                origin: test.origin.clone(),
                count: test.volumes.len(),
                max: psy_sandbox::MAX_VOLUMES,
            });
        }
        let lists = [
            ("writable", &test.sandbox.writable),
            ("readonly", &test.sandbox.readonly),
        ];
        for (key, dirs) in lists {
            if dirs.len() > psy_sandbox::MAX_WRITABLE {
                return Err(PrepareError::TooManyDirectories {
                    test: test.id.to_string(),
                    origin: test.origin.clone(),
                    key,
                    count: dirs.len(),
                    max: psy_sandbox::MAX_WRITABLE,
                });
            }
            for dir in dirs {
                let real = std::fs::canonicalize(dir).ok().filter(|d| d.is_dir());
                let problem = match real {
                    None => Some("is not an existing directory"),
                    Some(d) if d.starts_with(&state_root) || state_root.starts_with(&d) => {
                        Some("holds psy's state (.psyduck), which tests never see")
                    }
                    Some(_) => None,
                };
                if let Some(problem) = problem {
                    return Err(PrepareError::BadDirectory {
                        test: test.id.to_string(),
                        origin: test.origin.clone(),
                        key,
                        dir: dir.clone(),
                        problem,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Tests asking for `privileged = true` run only when the user let them.
pub(crate) fn privileged(tests: &[TestSpec], allowed: bool) -> Result<(), PrepareError> {
    let asking: Vec<String> = tests
        .iter()
        .filter(|t| t.sandbox.privileged)
        .map(|t| format!("{} ({})", t.id, t.origin))
        .collect();
    if asking.is_empty() || allowed {
        Ok(())
    } else {
        Err(PrepareError::PrivilegedNotAllowed { tests: asking })
    }
}
