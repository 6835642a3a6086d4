//! How Warden talks to Claude Code (checked with 2.1.328), as pure functions
//! that are tested natively: building `claude -p` command lines, folding the
//! lines of `--output-format stream-json` into a turn's outcome, and reading
//! a session back from its transcript.

pub mod argv;
pub mod events;
pub mod transcript;
