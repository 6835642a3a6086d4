//! Warden's stdin and stdout as the MCP stdio transport.
//!
//! An MCP client starts Warden with a pipe or a socket on each: those are
//! read and written through the runtime's event loop, each message one
//! non-blocking read or write on the thread that handles it. Anything else
//! (a terminal, a file) goes through tokio's standard streams, which hand
//! every read and write to a helper thread: on a pipe that costs thread
//! wake-ups on every message, most of a `ping`'s time. The pipe's or
//! socket's open file description stays non-blocking: an MCP client's
//! pipes are Warden's alone, and a terminal is never changed.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;

use rustix::fs::FileType;
use tokio::io::{AsyncRead, AsyncWrite};

pub type Reader = Pin<Box<dyn AsyncRead + Send>>;
pub type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// The transport over this process's stdin and stdout. Must run inside the runtime.
pub fn transport() -> (Reader, Writer) {
    let reader = evented_or(
        io::stdin().as_fd(),
        "reading stdin",
        |fd| Ok(Box::pin(tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?) as Reader),
        |socket| Box::pin(socket) as Reader,
        || Box::pin(tokio::io::stdin()) as Reader,
    );
    let writer = evented_or(
        io::stdout().as_fd(),
        "writing stdout",
        |fd| Ok(Box::pin(tokio::net::unix::pipe::Sender::from_owned_fd(fd)?) as Writer),
        |socket| Box::pin(socket) as Writer,
        || Box::pin(tokio::io::stdout()) as Writer,
    );
    (reader, writer)
}

/// `fd` as a pipe or socket end for the event loop, or else the `fallback` stream.
fn evented_or<T>(
    fd: BorrowedFd<'_>,
    doing: &str,
    pipe: impl FnOnce(OwnedFd) -> io::Result<T>,
    socket: impl FnOnce(tokio::net::UnixStream) -> T,
    fallback: impl FnOnce() -> T,
) -> T {
    let stream = match evented(fd) {
        Ok(Some(Evented::Pipe(fd))) => pipe(fd).map(Some),
        Ok(Some(Evented::Socket(stream))) => Ok(Some(socket(stream))),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    match stream {
        Ok(Some(stream)) => stream,
        Ok(None) => fallback(),
        Err(e) => {
            tracing::debug!(error = %e, "{doing} through a helper thread");
            fallback()
        }
    }
}

/// A stream the event loop can wait on.
enum Evented {
    Pipe(OwnedFd),
    Socket(tokio::net::UnixStream),
}

/// A copy of `fd` ready for the event loop if it is a pipe or a socket
/// (non-blocking from now on), `None` otherwise.
fn evented(fd: BorrowedFd<'_>) -> io::Result<Option<Evented>> {
    let kind = FileType::from_raw_mode(rustix::fs::fstat(fd)?.st_mode);
    if kind != FileType::Fifo && kind != FileType::Socket {
        return Ok(None);
    }
    let copy = fd.try_clone_to_owned()?;
    if kind == FileType::Fifo {
        return Ok(Some(Evented::Pipe(copy)));
    }
    let stream = std::os::unix::net::UnixStream::from(copy);
    stream.set_nonblocking(true)?;
    Ok(Some(Evented::Socket(tokio::net::UnixStream::from_std(stream)?)))
}
