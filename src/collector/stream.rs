//! The byte stream under a Redis connection, with a cap on the size of one reply.
//!
//! The `redis` crate reads a reply whole before it hands it over, whatever size the
//! server declares: a server that announces `$1900000000` and streams took the agent to
//! 3.6 GB. The crate has no limit of its own, so the connection runs over this stream,
//! which counts the bytes read since the last write (the collector sends one command at
//! a time on a connection, so that is the size of the reply being read) and fails the
//! read once they pass the cap. The connection then breaks, the round is a protocol
//! error that names the limit, and the next round reconnects: memory stays near the cap.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The cap of one connection, and whether it was hit.
#[derive(Debug)]
pub struct Tripwire {
    max: u64,
    tripped: AtomicBool,
    /// Counts, for the endpoint, the connections whose cap was hit.
    count: Option<Arc<AtomicU64>>,
    /// An error line the server sent before any command (`-ERR max number of clients
    /// reached`, then it closes): the client library drops a reply nobody asked for, so
    /// it is kept here to say why the connection broke.
    greeting: Mutex<Option<String>>,
}

impl Tripwire {
    pub fn new(max: u64, count: Option<Arc<AtomicU64>>) -> Arc<Self> {
        Arc::new(Self {
            max,
            tripped: AtomicBool::new(false),
            count,
            greeting: Mutex::new(None),
        })
    }

    /// The error line the server sent before any command, if it sent one.
    pub fn greeting(&self) -> Option<String> {
        self.greeting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn note_greeting(&self, bytes: &[u8]) {
        let Some(line) = bytes.strip_prefix(b"-") else {
            return;
        };
        let end = line
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(line.len())
            .min(256);
        let text = String::from_utf8_lossy(&line[..end]).into_owned();
        *self.greeting.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// Whether a reply on this connection went past the cap.
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
    }

    fn trip(&self) {
        if !self.tripped.swap(true, Ordering::Relaxed)
            && let Some(count) = &self.count
        {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn error(&self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, too_large_message(self.max))
    }
}

/// The message of a round whose reply was too large.
pub fn too_large_message(max: u64) -> String {
    format!("reply larger than limits.max_reply_bytes ({max} bytes); connection closed")
}

/// A stream that fails its reads once more than the cap arrived since the last write.
#[derive(Debug)]
pub struct Capped<S> {
    inner: S,
    read_since_write: u64,
    written: bool,
    /// What arrived before the first write (at most 256 bytes; normally nothing).
    early: Vec<u8>,
    wire: Arc<Tripwire>,
}

impl<S> Capped<S> {
    pub fn new(inner: S, wire: Arc<Tripwire>) -> Self {
        Self {
            inner,
            read_since_write: 0,
            written: false,
            early: Vec::new(),
            wire,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.wire.tripped() {
            return Poll::Ready(Err(this.wire.error()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if !this.written && this.early.len() < 256 {
            let new = &buf.filled()[before..];
            let take = new.len().min(256 - this.early.len());
            this.early.extend_from_slice(&new[..take]);
            this.wire.note_greeting(&this.early);
        }
        this.read_since_write += (buf.filled().len() - before) as u64;
        if this.read_since_write > this.wire.max {
            this.wire.trip();
            return Poll::Ready(Err(this.wire.error()));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        if written > 0 {
            // A new command: what comes next is its reply.
            this.read_since_write = 0;
            this.written = true;
        }
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_fail_past_the_cap_until_the_next_write_resets_it() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let count = Arc::new(AtomicU64::new(0));
        let wire = Tripwire::new(10, Some(Arc::clone(&count)));
        let mut capped = Capped::new(client, Arc::clone(&wire));

        server.write_all(b"0123456789").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(capped.read(&mut buf).await.unwrap(), 10);
        capped.write_all(b"PING\r\n").await.unwrap();
        server.write_all(b"0123456789").await.unwrap();
        assert_eq!(
            capped.read(&mut buf).await.unwrap(),
            10,
            "reset by the write"
        );

        server.write_all(b"x").await.unwrap();
        let err = capped.read(&mut buf).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("limits.max_reply_bytes (10 bytes)"),
            "{err}"
        );
        assert!(wire.tripped());
        // Once tripped, the connection stays failed; the count is per connection.
        assert!(capped.read(&mut buf).await.is_err());
        assert_eq!(count.load(Ordering::Relaxed), 1);
        assert_eq!(wire.greeting(), None);
    }

    #[tokio::test]
    async fn an_error_line_before_any_command_is_kept() {
        let (client, mut server) = tokio::io::duplex(1024);
        let wire = Tripwire::new(1024, None);
        let mut capped = Capped::new(client, Arc::clone(&wire));
        server
            .write_all(b"-ERR max number of clients reached\r\n")
            .await
            .unwrap();
        drop(server);
        let mut buf = Vec::new();
        capped.read_to_end(&mut buf).await.unwrap();
        assert_eq!(
            wire.greeting().as_deref(),
            Some("ERR max number of clients reached")
        );
    }
}
