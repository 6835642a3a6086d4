//! A child's output as whole lines, for drivers of agents that print JSON
//! lines: the host hands a line longer than its line limit over in chunks
//! (`truncated`), and a line carrying a whole answer can be long, so chunks
//! are joined again (up to [`MAX_JOINED`]). The last lines of stderr are
//! kept to explain a failed run.

use super::PluginError;
use super::process::{Child, OutputStream, ReadResult};

/// Longest stdout line put back together; longer ones are dropped with a log line.
const MAX_JOINED: usize = 32 << 20;
/// Lines of stderr kept to explain a failed run.
const STDERR_TAIL: usize = 20;

pub enum Stream {
    Stdout,
    Stderr,
}

pub struct Output<'a> {
    child: &'a Child,
    read_timeout_ms: u32,
    partial: String,
    oversized: bool,
    stderr: Vec<String>,
}

impl<'a> Output<'a> {
    pub fn new(child: &'a Child, read_timeout_ms: u32) -> Self {
        Self { child, read_timeout_ms, partial: String::new(), oversized: false, stderr: Vec::new() }
    }

    /// The next whole line, or `None` once both streams are closed.
    pub fn next_line(&mut self) -> Result<Option<(Stream, String)>, PluginError> {
        loop {
            let line = match self.child.read_line(self.read_timeout_ms)? {
                ReadResult::Line(line) => line,
                ReadResult::Pending => continue,
                ReadResult::Closed => return Ok(None),
            };
            if line.stream == OutputStream::Stderr {
                return Ok(Some((Stream::Stderr, line.text)));
            }
            if self.partial.len() + line.text.len() > MAX_JOINED {
                self.oversized = true;
                self.partial.clear();
            } else {
                self.partial.push_str(&line.text);
            }
            if line.truncated {
                continue;
            }
            let whole = std::mem::take(&mut self.partial);
            if std::mem::take(&mut self.oversized) {
                super::log::log(
                    super::log::Level::Warn,
                    &format!("dropped an output line longer than {MAX_JOINED} bytes"),
                );
                continue;
            }
            return Ok(Some((Stream::Stdout, whole)));
        }
    }

    pub fn keep_stderr(&mut self, line: String) {
        if self.stderr.len() == STDERR_TAIL {
            self.stderr.remove(0);
        }
        self.stderr.push(line);
    }

    pub fn stderr_tail(&self) -> String {
        self.stderr.join("\n")
    }
}
