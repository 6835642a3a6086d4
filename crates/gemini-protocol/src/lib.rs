//! How Warden talks to Gemini CLI (checked with 0.61.0), as pure functions
//! that are tested natively: building its headless command lines, folding
//! the lines of `-o stream-json` into a turn's outcome, and reading a
//! session back from its transcript.

pub mod argv;
pub mod events;
pub mod transcript;
