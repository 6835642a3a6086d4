//! A child's output as whole lines, for drivers of agents that print JSON
//! lines ([`drain`]): the host hands a line longer than its line limit over
//! in chunks (`truncated`), and a line carrying a whole answer can be long,
//! so chunks are joined again (up to [`MAX_JOINED`]). The last lines of
//! stderr are kept to explain a failed run.

use super::PluginError;
use super::process::{Child, OutputStream, ReadResult};

/// Longest stdout line put back together; longer ones are dropped with a log line.
const MAX_JOINED: usize = 32 << 20;
/// Lines of stderr kept to explain a failed run.
const STDERR_TAIL: usize = 20;

/// How a child's run ended.
pub struct Finished {
    pub code: i32,
    /// Its last lines of stderr, to explain a failure.
    pub stderr_tail: String,
}

/// Read `child`'s output to its end, handing each whole stdout line to
/// `on_stdout` and each stderr line to `on_stderr`, then wait for it to exit.
/// Each wait lasts at most `read_timeout_ms`; the call's own deadline and
/// cancellation end it through the host.
pub fn drain(
    child: &Child,
    read_timeout_ms: u32,
    mut on_stdout: impl FnMut(String),
    mut on_stderr: impl FnMut(&str),
) -> Result<Finished, PluginError> {
    let mut output = Output::new(child, read_timeout_ms);
    while let Some((stream, line)) = output.next_line()? {
        match stream {
            Stream::Stdout => on_stdout(line),
            Stream::Stderr => {
                on_stderr(&line);
                output.keep_stderr(line);
            }
        }
    }
    let code = loop {
        if let Some(code) = child.wait(read_timeout_ms)? {
            break code;
        }
    };
    Ok(Finished { code, stderr_tail: output.stderr_tail() })
}

enum Stream {
    Stdout,
    Stderr,
}

struct Output<'a> {
    child: &'a Child,
    read_timeout_ms: u32,
    partial: String,
    oversized: bool,
    stderr: Vec<String>,
}

impl<'a> Output<'a> {
    fn new(child: &'a Child, read_timeout_ms: u32) -> Self {
        Self { child, read_timeout_ms, partial: String::new(), oversized: false, stderr: Vec::new() }
    }

    /// The next whole line, or `None` once both streams are closed.
    fn next_line(&mut self) -> Result<Option<(Stream, String)>, PluginError> {
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

    fn keep_stderr(&mut self, line: String) {
        if self.stderr.len() == STDERR_TAIL {
            self.stderr.remove(0);
        }
        self.stderr.push(line);
    }

    fn stderr_tail(&self) -> String {
        self.stderr.join("\n")
    }
}
