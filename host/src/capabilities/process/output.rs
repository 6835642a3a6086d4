//! A child's stdout and stderr, read by the thread that asks for a line (no
//! reader thread, no queue): `next_line` polls both pipes and the call's
//! wake-up descriptor, reads what is there, and splits it into lines.
//!
//! Bounds: every byte read counts against the stream's cap, newlines
//! included; past the cap, output is read and dropped (so the child never
//! blocks on a full pipe) and the guest gets one truncation notice. At most
//! one line ([`MAX_LINE`]) plus one read ([`CHUNK`]) is buffered per stream.
//! Backpressure is the pipe's: a child whose output nobody reads blocks once
//! the pipe is full, as with any pipe, so a guest reads before it waits.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};

use super::Stream;
use super::pidfd::poll;

/// Longest line handed to a guest in one piece; longer lines arrive in chunks.
pub const MAX_LINE: usize = 1 << 20;
/// Bytes read from a pipe at once.
const CHUNK: usize = 64 << 10;

/// One line of output (without its line ending).
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    pub stream: Stream,
    pub text: Vec<u8>,
    pub truncated: bool,
}

/// What a wait for output ended with.
pub enum Next {
    Line(Line),
    /// Nothing yet: the timeout passed or the wake-up descriptor fired.
    Pending,
    /// Both streams reached end of file and every line was handed out.
    Closed,
}

pub struct Output {
    streams: [Pipe; 2],
}

impl Output {
    pub fn new(stdout: OwnedFd, stderr: OwnedFd, cap: usize) -> Self {
        Self { streams: [Pipe::new(Stream::Stdout, stdout, cap), Pipe::new(Stream::Stderr, stderr, cap)] }
    }

    /// A buffered line if there is one; otherwise wait up to `timeout` for
    /// output, or for `wake` to become readable, and read what arrived.
    pub fn next_line(&mut self, timeout: Duration, wake: Option<BorrowedFd<'_>>) -> io::Result<Next> {
        if let Some(line) = self.buffered() {
            return Ok(Next::Line(line));
        }
        if self.streams.iter().all(|s| s.fd.is_none()) {
            return Ok(Next::Closed);
        }
        let mut ready = [false; 2];
        {
            let mut fds = Vec::with_capacity(3);
            let mut polled = Vec::with_capacity(2);
            for (i, stream) in self.streams.iter().enumerate() {
                if let Some(fd) = &stream.fd {
                    fds.push(PollFd::new(fd, PollFlags::IN));
                    polled.push(i);
                }
            }
            if let Some(wake) = wake {
                fds.push(PollFd::from_borrowed_fd(wake, PollFlags::IN));
            }
            poll(&mut fds, timeout)?;
            for (slot, &i) in polled.iter().enumerate() {
                ready[i] = !fds[slot].revents().is_empty();
            }
        }
        for (stream, ready) in self.streams.iter_mut().zip(ready) {
            if ready {
                stream.fill()?;
            }
        }
        Ok(self.buffered().map_or(Next::Pending, Next::Line))
    }

    fn buffered(&mut self) -> Option<Line> {
        self.streams.iter_mut().find_map(Pipe::line)
    }
}

/// One stream: its pipe (until end of file), the bytes not yet handed out,
/// and how much of its cap is used.
struct Pipe {
    stream: Stream,
    fd: Option<OwnedFd>,
    buffer: Vec<u8>,
    /// Where the bytes not yet handed out start in `buffer`.
    start: usize,
    cap: usize,
    received: usize,
    /// Bytes past the cap were dropped.
    dropped: bool,
    /// The guest was told (a line marked truncated) that output was dropped.
    told: bool,
}

impl Pipe {
    fn new(stream: Stream, fd: OwnedFd, cap: usize) -> Self {
        Self {
            stream,
            fd: Some(fd),
            buffer: Vec::new(),
            start: 0,
            cap,
            received: 0,
            dropped: false,
            told: false,
        }
    }

    /// One `read` from the pipe (it is readable, so this does not block).
    fn fill(&mut self) -> io::Result<()> {
        let Some(fd) = &self.fd else { return Ok(()) };
        self.buffer.drain(..self.start);
        self.start = 0;
        let start = self.buffer.len();
        self.buffer.resize(start + CHUNK, 0);
        let read = loop {
            match rustix::io::read(fd.as_fd(), &mut self.buffer[start..]) {
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => break 0,
                Err(e) => {
                    self.buffer.truncate(start);
                    tracing::debug!(stream = ?self.stream, error = %e, "child output pipe failed");
                    self.fd = None;
                    return Ok(());
                }
                Ok(0) => {
                    self.fd = None;
                    break 0;
                }
                Ok(n) => break n,
            }
        };
        let room = self.cap.saturating_sub(self.received);
        self.received = self.received.saturating_add(read);
        let kept = read.min(room);
        if kept < read {
            self.dropped = true;
        }
        self.buffer.truncate(start + kept);
        Ok(())
    }

    /// The next complete line, a full-length chunk of a longer one, or what
    /// is left once no more output will be kept.
    fn line(&mut self) -> Option<Line> {
        let pending = &self.buffer[self.start..];
        if let Some(end) = pending.iter().take(MAX_LINE).position(|&b| b == b'\n') {
            let mut text = pending[..end].to_vec();
            self.start += end + 1;
            if text.last() == Some(&b'\r') {
                text.pop();
            }
            let truncated = self.cut_here();
            return Some(Line { stream: self.stream, text, truncated });
        }
        if pending.len() >= MAX_LINE {
            let text = pending[..MAX_LINE].to_vec();
            self.start += MAX_LINE;
            return Some(Line { stream: self.stream, text, truncated: true });
        }
        let finished = self.fd.is_none() || self.dropped;
        if finished && !pending.is_empty() {
            let text = pending.to_vec();
            self.buffer.clear();
            self.start = 0;
            let truncated = self.dropped;
            self.told |= truncated;
            return Some(Line { stream: self.stream, text, truncated });
        }
        if self.dropped && !self.told {
            self.told = true;
            return Some(Line { stream: self.stream, text: Vec::new(), truncated: true });
        }
        None
    }

    /// Whether the line just taken is the last one kept before dropped output.
    fn cut_here(&mut self) -> bool {
        let last = self.dropped && !self.told && self.start == self.buffer.len();
        self.told |= last;
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe_with(bytes: &[u8], cap: usize) -> Output {
        let (out_r, out_w) = rustix::pipe::pipe().unwrap();
        let (err_r, err_w) = rustix::pipe::pipe().unwrap();
        rustix::io::write(&out_w, bytes).unwrap();
        drop((out_w, err_w));
        Output::new(out_r, err_r, cap)
    }

    fn lines(mut output: Output) -> Vec<(String, bool)> {
        let mut lines = Vec::new();
        loop {
            match output.next_line(Duration::from_secs(5), None).unwrap() {
                Next::Line(line) => lines.push((String::from_utf8(line.text).unwrap(), line.truncated)),
                Next::Pending => {}
                Next::Closed => return lines,
            }
        }
    }

    #[test]
    fn lines_are_split_and_line_endings_dropped() {
        let got = lines(pipe_with(b"one\r\ntwo\n\nlast", 100));
        let want = [("one", false), ("two", false), ("", false), ("last", false)];
        assert_eq!(got, want.map(|(t, c)| (t.to_string(), c)));
    }

    #[test]
    fn every_byte_counts_against_the_cap_newlines_included() {
        let got = lines(pipe_with(&[b'\n'; 10_000], 10));
        assert_eq!(got.len(), 10, "ten empty lines, the last marked as cut: {got:?}");
        assert!(got[..9].iter().all(|(t, c)| t.is_empty() && !c));
        assert_eq!(got[9], (String::new(), true));
    }

    #[test]
    fn the_line_crossing_the_cap_is_cut_and_marked() {
        let got = lines(pipe_with(b"abc\ndefgh\nij\n", 7));
        assert_eq!(got, vec![("abc".to_string(), false), ("def".to_string(), true)]);
    }
}
