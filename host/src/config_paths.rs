//! Paths in the operator's configuration (`state-dir`, `cache-dir`, each
//! plugin's `path`, `root` and `cwd-roots`, and `--state-dir`). MCP clients
//! start Warden from whatever directory they happen to be in, so a relative
//! path would name a different place on each start: `root = "~/sessions"`
//! (TOML does not expand `~`) used to create `./~/sessions` there. A leading
//! `~` or `~/` is expanded to `$HOME`; any other path must be absolute.

use std::path::{Component, Path, PathBuf};

/// `path` (the value of `setting`) as an absolute path: `~/…` expanded to
/// `$HOME`, a relative path refused with an error naming the setting and the fix.
pub fn validate_root(setting: &str, path: &Path) -> anyhow::Result<PathBuf> {
    let mut components = path.components();
    match components.next() {
        Some(Component::RootDir) => Ok(path.to_path_buf()),
        Some(Component::Normal(first)) if first == "~" => {
            let home =
                std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_absolute()).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{setting} = {path:?} starts with `~`, but $HOME is not set to an absolute path; \
                     write the absolute path instead"
                    )
                })?;
            Ok(home.join(components.as_path()))
        }
        Some(Component::Normal(first)) if first.as_encoded_bytes().starts_with(b"~") => anyhow::bail!(
            "{setting} = {path:?}: only `~/` (your own home directory) is expanded, not `~user`; \
             write the absolute path instead"
        ),
        _ => anyhow::bail!(
            "{setting} = {path:?} is a relative path, and Warden may be started from any directory; \
             write an absolute path (or one starting with `~/` for your home directory)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_home_and_refuses_relative_paths() {
        let home = PathBuf::from(std::env::var_os("HOME").expect("tests run with HOME set"));
        let ok = |p: &str| validate_root("root", Path::new(p)).unwrap();
        assert_eq!(ok("/var/lib/warden"), Path::new("/var/lib/warden"));
        assert_eq!(ok("~/sessions"), home.join("sessions"));
        assert_eq!(ok("~"), home);
        for relative in ["sessions", "./sessions", "../up", "~bob/sessions", "", "~sessions"] {
            let err = validate_root("root", Path::new(relative)).unwrap_err().to_string();
            assert!(err.starts_with(&format!("root = {relative:?}")) && err.contains("absolute"), "{err}");
        }
    }
}
