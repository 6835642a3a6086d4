//! Warden's own log (stderr, one event per line). Text that reaches the log
//! from plugins — their `log` messages, their stderr, their error messages,
//! the session ids and thread ids they return — may contain newlines and
//! terminal control sequences. Every event is written as exactly one line:
//! control characters (C0, DEL, C1, line and paragraph separators, bidi
//! overrides) inside it are escaped, so nothing a plugin says can forge a
//! line of its own or rewrite what the operator sees.

use std::borrow::Cow;
use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Install the stderr logger (`WARDEN_LOG` filters, default `info`).
pub fn init() {
    tracing_subscriber::fmt()
        .with_writer(OneLineStderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG").unwrap_or_else(|_| "info".into()),
        )
        .init();
}

/// `text` with every character that could break or disguise a log line escaped
/// (`\n`, `\r`, `\t`, `\u{1b}`, …); unchanged text is borrowed.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Control characters, Unicode line/paragraph separators and bidi controls.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Makes a [`OneLine`] over stderr for each event.
struct OneLineStderr;

impl<'a> MakeWriter<'a> for OneLineStderr {
    type Writer = OneLine<io::StderrLock<'static>>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLine(io::stderr().lock())
    }
}

/// A writer that receives one formatted event per `write` (as the fmt layer
/// does) and writes it as one line: control characters are escaped except
/// the event's final newline.
struct OneLine<W: Write>(W);

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, newline) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (&*text, ""),
        };
        let line = one_line(body);
        self.0.write_all(line.as_bytes())?;
        self.0.write_all(newline.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_line_breaks_and_terminal_controls_only() {
        assert!(matches!(one_line("plain text, ünïcode"), Cow::Borrowed(_)));
        assert_eq!(
            one_line("a\nWARN capability refused plugin=storage-dir\r\x1b[2K\u{85}\u{2028}\u{202e}"),
            "a\\nWARN capability refused plugin=storage-dir\\r\\u{1b}[2K\\u{85}\\u{2028}\\u{202e}"
        );
        assert_eq!(one_line("tab\there"), "tab\\there");
    }

    #[test]
    fn an_event_is_written_as_one_line() {
        let mut out = Vec::new();
        OneLine(&mut out).write_all(b"INFO plugin stderr stderr=x\nERROR forged\n").unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "INFO plugin stderr stderr=x\\nERROR forged\n");
    }
}
