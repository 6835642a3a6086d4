//! The `progress` interface: events go to the call's progress sink (the MCP
//! client's progress notifications) when the caller asked for progress. Each
//! event is capped here, so no plugin can make one event cost more than a few
//! KiB anywhere downstream.

use std::sync::Arc;

use wasmtime::component::HasData;

use super::Who;
use crate::contract::bindings::agent::warden::plugin::progress::{self, ProgressEvent as WitEvent};

/// Receives the `progress` events of a call.
pub type ProgressSink = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// A progress event, as reported by an agent-driver plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgressEvent {
    pub kind: String,
    pub message: String,
}

/// What `progress` needs from a call: where its events go, if anywhere.
pub struct ProgressView<'a> {
    pub who: Who<'a>,
    pub sink: Option<&'a ProgressSink>,
}

/// Links `progress` to a call's [`ProgressView`].
pub struct Progress;

impl HasData for Progress {
    type Data<'a> = ProgressView<'a>;
}

/// Longest event kind kept, in bytes.
pub const MAX_KIND_BYTES: usize = 64;
/// Longest event message kept, in bytes; a longer one is cut with a note.
pub const MAX_MESSAGE_BYTES: usize = 4096;

impl progress::Host for ProgressView<'_> {
    fn report(&mut self, event: WitEvent) {
        let Some(sink) = self.sink else { return };
        let event = ProgressEvent {
            kind: cap(event.kind, MAX_KIND_BYTES),
            message: cap(event.message, MAX_MESSAGE_BYTES),
        };
        tracing::debug!(plugin = %self.who.plugin, kind = %event.kind, message = %event.message, "progress");
        sink(event);
    }
}

/// `text` cut to at most `max` bytes on a character boundary, with a note
/// saying how long it was.
fn cap(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let note = format!("… [cut from {} bytes]", text.len());
    text.truncate(text.floor_char_boundary(max.saturating_sub(note.len())));
    text.push_str(&note);
    text
}

#[cfg(test)]
mod tests {
    use super::cap;

    #[test]
    fn long_text_is_cut_on_a_character_boundary_within_the_cap() {
        assert_eq!(cap("short".into(), 64), "short");
        let cut = cap("é".repeat(5000), 4096);
        assert!(cut.len() <= 4096, "{}", cut.len());
        assert!(cut.starts_with("éé") && cut.ends_with("… [cut from 10000 bytes]"), "{cut}");
    }
}
