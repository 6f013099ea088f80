//! The listener: HTTP/1.1 connections served by hyper, each watched for how long it may
//! stay open, and all of them kept under `limits.http.max_connections`.
//!
//! - A connection that has not sent a whole request head within `header_timeout` of
//!   opening (or of the first byte of its next request) is closed; one kept alive with no
//!   request for `idle_timeout` is closed. A request in progress is bounded by the
//!   router's `request_timeout`, not here.
//! - At `max_connections`, the longest-waiting connection with no request in progress
//!   (silent ones first) is closed to make room; with none, the new one is closed at
//!   once. So silent or idle clients can never lock out `/metrics` or the webhook, and the
//!   agent never holds more sockets than the cap (plus the one being accepted).
//! - Above `max_connections - reserved_connections` open, only `GET /metrics` (at the
//!   telemetry path) and `POST /webhook/alertmanager` are served; other requests get 503
//!   and the connection closes.
//! - With TLS (`--web.config.file`), the handshake is part of the request head: it must
//!   be done within `header_timeout` of opening. A failed one is counted and logged at
//!   debug (port scanners fail it all day).
//! - On cancellation: stop accepting, close connections with no request in progress, let
//!   the others finish their request.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, warn};

use super::counters::HttpMetrics;
use super::web::Web;
use crate::config::HttpLimits;

/// What the listener is told at start.
#[derive(Debug, Clone)]
pub struct Surface {
    /// `limits.http`.
    pub limits: HttpLimits,
    pub metrics: HttpMetrics,
    /// `--web.config.file`: TLS for each new connection.
    pub web: Arc<Web>,
    /// `--web.telemetry-path`, kept reachable on the reserved connections.
    pub telemetry_path: String,
}

/// Serves `app` on `listener` until `cancel`, then waits for the open requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    surface: Surface,
    cancel: CancellationToken,
) {
    let conns = Arc::new(Connections {
        limits: surface.limits,
        metrics: surface.metrics,
        web: surface.web,
        telemetry_path: surface.telemetry_path,
        open: Mutex::default(),
        next_id: AtomicU64::new(0),
    });
    let tasks = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = cancel.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors (EMFILE) or a connection reset while queued: wait a
                // little rather than spin.
                warn!(error = %e, "accepting an HTTP connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(conn) = conns.admit() else {
            drop(stream);
            continue;
        };
        tasks.spawn(serve_connection(
            stream,
            app.clone(),
            Arc::clone(&conns),
            conn,
            cancel.clone(),
        ));
    }
    drop(listener);
    tasks.close();
    tasks.wait().await;
}

/// Every open connection, for the cap and eviction.
#[derive(Debug)]
struct Connections {
    limits: HttpLimits,
    metrics: HttpMetrics,
    web: Arc<Web>,
    telemetry_path: String,
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
}

impl Connections {
    /// Registers a new connection, evicting an idle one at the cap; `None` when the cap
    /// is reached and every connection is busy.
    fn admit(&self) -> Option<Arc<Conn>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= self.limits.max_connections {
            let victim = open
                .values()
                .filter_map(|c| {
                    c.waiting_since()
                        .map(|(fresh, since)| (!fresh, since, c.id))
                })
                .min();
            match victim {
                Some((_, _, id)) => {
                    if let Some(c) = open.remove(&id) {
                        c.evict.cancel();
                    }
                    self.metrics.closed("evicted");
                }
                None => {
                    self.metrics.refused("max_connections");
                    debug!(
                        max_connections = self.limits.max_connections,
                        "HTTP connection refused: every connection is busy"
                    );
                    return None;
                }
            }
        }
        let conn = Arc::new(Conn::new(self.next_id.fetch_add(1, Ordering::Relaxed)));
        open.insert(conn.id, Arc::clone(&conn));
        self.metrics.set_open(open.len());
        Some(conn)
    }

    fn remove(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&id);
        self.metrics.set_open(open.len());
    }

    fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether only the reserved connections are left (this one counted).
    fn reserved_only(&self) -> bool {
        let general = self
            .limits
            .max_connections
            .saturating_sub(self.limits.reserved_connections);
        self.len() > general
    }
}

/// One connection's state, shared by its request handler, its socket and its watcher.
#[derive(Debug)]
struct Conn {
    id: u64,
    phase: Mutex<Phase>,
    changed: Notify,
    evict: CancellationToken,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head. `fresh`: no request yet on this connection; `reading`:
    /// bytes of the next request have come. `since`: when the wait (or the reading) began.
    Waiting {
        fresh: bool,
        reading: bool,
        since: Instant,
    },
    /// Requests in progress.
    Busy(usize),
}

impl Conn {
    fn new(id: u64) -> Self {
        Conn {
            id,
            phase: Mutex::new(Phase::Waiting {
                fresh: true,
                reading: false,
                since: Instant::now(),
            }),
            changed: Notify::new(),
            evict: CancellationToken::new(),
        }
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, f: impl FnOnce(&mut Phase)) {
        f(&mut self.phase.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.notify_one();
    }

    /// `Some((fresh, since))` when no request is in progress.
    fn waiting_since(&self) -> Option<(bool, Instant)> {
        match self.phase() {
            Phase::Waiting { fresh, since, .. } => Some((fresh, since)),
            Phase::Busy(_) => None,
        }
    }

    /// When the connection must close unless something happens first, and why.
    fn deadline(&self, limits: &HttpLimits) -> Option<(Instant, &'static str)> {
        match self.phase() {
            Phase::Waiting {
                fresh,
                reading,
                since,
            } if fresh || reading => Some((since + limits.header_timeout, "header_timeout")),
            Phase::Waiting { since, .. } => Some((since + limits.idle_timeout, "idle_timeout")),
            Phase::Busy(_) => None,
        }
    }

    fn bytes_arrived(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if let Phase::Waiting {
            fresh: false,
            reading: reading @ false,
            since,
        } = &mut *phase
        {
            *reading = true;
            *since = Instant::now();
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.set(|p| {
            *p = match *p {
                Phase::Busy(n) => Phase::Busy(n + 1),
                Phase::Waiting { .. } => Phase::Busy(1),
            }
        });
        InFlight(Arc::clone(self))
    }
}

/// A request in progress; dropped when its response is ready (or the request is
/// abandoned).
struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set(|p| {
            *p = match *p {
                Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
                _ => Phase::Waiting {
                    fresh: false,
                    reading: false,
                    since: Instant::now(),
                },
            }
        });
    }
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    conns: Arc<Connections>,
    conn: Arc<Conn>,
    cancel: CancellationToken,
) {
    let io = Watched {
        inner: stream,
        conn: Arc::clone(&conn),
    };
    match conns.web.tls() {
        None => drive(io, app, &conns, &conn, cancel).await,
        Some(acceptor) => {
            if let Some(tls) = handshake(acceptor, io, &conns, &conn, &cancel).await {
                drive(tls, app, &conns, &conn, cancel).await;
            }
        }
    }
    conns.remove(conn.id);
}

/// The TLS handshake, within the connection's header deadline; `None` when it failed,
/// timed out or the connection was evicted or cancelled meanwhile.
async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    io: Watched,
    conns: &Connections,
    conn: &Conn,
    cancel: &CancellationToken,
) -> Option<tokio_rustls::server::TlsStream<Watched>> {
    let deadline = conn
        .deadline(&conns.limits)
        .map_or_else(far_future, |(at, _)| at);
    tokio::select! {
        result = tokio::time::timeout_at(deadline, acceptor.accept(io)) => match result {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err(e)) => {
                conns.metrics.closed("tls_handshake");
                debug!(error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                conns.metrics.closed("header_timeout");
                debug!("TLS handshake not done within header_timeout");
                None
            }
        },
        () = conn.evict.cancelled() => None,
        () = cancel.cancelled() => None,
    }
}

/// Serves the requests of one connection (plain or TLS) until it ends, times out, is
/// evicted, or the agent shuts down.
async fn drive<I>(
    io: I,
    app: Router,
    conns: &Arc<Connections>,
    conn: &Arc<Conn>,
    cancel: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = conns.limits;
    let io = TokioIo::new(io);
    let service = {
        let (conn, conns) = (Arc::clone(conn), Arc::clone(conns));
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let (app, conn, conns) = (app.clone(), Arc::clone(&conn), Arc::clone(&conns));
            async move {
                let _in_flight = conn.begin();
                if conns.reserved_only() && !may_use_reserved(&request, &conns.telemetry_path) {
                    conns.metrics.refused("reserved");
                    return Ok::<_, Infallible>(reserved_refusal());
                }
                app.oneshot(request.map(Body::new)).await
            }
        })
    };
    // Our own timers replace hyper's header timeout, which also ran while a kept-alive
    // connection waited, making idle_timeout meaningless above header_timeout.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None).keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut shutting_down = false;
    loop {
        if shutting_down && conn.waiting_since().is_some() {
            break;
        }
        let deadline = conn.deadline(&limits);
        let wake = deadline.map_or_else(far_future, |(at, _)| at);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    debug!(error = %e, "HTTP connection ended with an error");
                }
                break;
            }
            () = conn.changed.notified() => {}
            () = tokio::time::sleep_until(wake), if deadline.is_some() => {
                if let Some((at, reason)) = conn.deadline(&limits)
                    && at <= Instant::now()
                {
                    conns.metrics.closed(reason);
                    debug!(reason, "HTTP connection closed");
                    break;
                }
            }
            () = conn.evict.cancelled() => break,
            () = cancel.cancelled(), if !shutting_down => {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

/// The requests the reserved connections are kept for.
fn may_use_reserved<B>(request: &Request<B>, telemetry_path: &str) -> bool {
    let (method, path) = (request.method(), request.uri().path());
    (path == telemetry_path && (method == Method::GET || method == Method::HEAD))
        || (path == super::WEBHOOK_PATH && method == Method::POST)
}

fn reserved_refusal() -> Response<Body> {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({
            "error": "the agent is at its connection limit (limits.http.max_connections); \
                      the remaining connections are kept for /metrics and the webhook. \
                      Try again later"
        })),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// The socket, telling its connection when bytes of a new request arrive.
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.bytes_arrived();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HttpLimits {
        HttpLimits {
            max_connections: 3,
            reserved_connections: 1,
            ..HttpLimits::default()
        }
    }

    fn connections() -> Connections {
        Connections {
            limits: limits(),
            metrics: HttpMetrics::default(),
            web: Arc::default(),
            telemetry_path: super::super::METRICS_PATH.to_owned(),
            open: Mutex::default(),
            next_id: AtomicU64::new(0),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_the_oldest_silent_connection_makes_room_and_busy_ones_never_do() {
        let conns = connections();
        let a = conns.admit().unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        let b = conns.admit().unwrap();
        let _busy_b = b.begin();
        let c = conns.admit().unwrap();
        assert!(conns.reserved_only());
        // At the cap: a (silent, oldest) goes, not b (busy).
        let d = conns.admit().unwrap();
        assert!(a.evict.is_cancelled() && !b.evict.is_cancelled());
        let (_busy_c, _busy_d) = (c.begin(), d.begin());
        assert!(conns.admit().is_none(), "every connection busy: refused");
        assert_eq!(conns.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_phase() {
        let l = HttpLimits {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(7),
            ..limits()
        };
        let conn = Arc::new(Conn::new(0));
        let start = Instant::now();
        assert_eq!(
            conn.deadline(&l),
            Some((start + l.header_timeout, "header_timeout"))
        );
        // Bytes of the first request change nothing: its head is due from the start.
        conn.bytes_arrived();
        assert_eq!(conn.deadline(&l).unwrap().0, start + l.header_timeout);
        let request = conn.begin();
        assert_eq!(conn.deadline(&l), None);
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(request);
        let done = Instant::now();
        assert_eq!(
            conn.deadline(&l),
            Some((done + l.idle_timeout, "idle_timeout"))
        );
        tokio::time::advance(Duration::from_secs(3)).await;
        conn.bytes_arrived();
        assert_eq!(
            conn.deadline(&l),
            Some((Instant::now() + l.header_timeout, "header_timeout"))
        );
    }
}
