//! How Warden talks to the Codex CLI, as pure functions that are tested
//! natively: building `codex exec` command lines and folding the JSON Lines
//! events of `codex exec --json` into a turn's outcome.

pub mod argv;
pub mod events;
pub mod rollout;
