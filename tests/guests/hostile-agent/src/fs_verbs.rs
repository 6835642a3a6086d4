//! Verbs against the host's log and the read-only root (CODEX_HOME):
//! `log:<message>` logs it as a warning, `stderr:<text>` prints it to stderr,
//! `read-ro:<path>` reads a file of the read-only root, `list-ro:<path>` lists
//! a directory of it (names joined by `,`).

use warden_plugin::agent::PluginError;
use warden_plugin::agent::log::{Level, log};
use warden_plugin::agent::store_fs_readonly as fs;

/// The outcome of `verb`, or `None` if it is not one of these.
pub fn run(verb: &str, arg: &str) -> Option<Result<String, PluginError>> {
    Some(match verb {
        "log" => {
            log(Level::Warn, arg);
            Ok("logged".into())
        }
        "stderr" => {
            eprint!("{arg}");
            Ok("printed".into())
        }
        "read-ro" => fs::read(arg).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        "list-ro" => fs::list_dir(arg)
            .map(|entries| entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>().join(",")),
        _ => return None,
    })
}
