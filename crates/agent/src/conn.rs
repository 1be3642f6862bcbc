//! The HTTP connection loop: a cap on open connections and an idle timeout, so no client
//! (idle, slow or flooding) can starve the agent (see `docs/security.md`).
//!
//! - At most [`ConnLimits::max_connections`] connections are open. When a new one arrives at
//!   the cap, the connection idle the longest (no request in flight) is closed to make room;
//!   when every connection is busy, the new one is closed at once.
//! - A connection with no request in flight for [`ConnLimits::idle_timeout`] is closed: this
//!   bounds a partial request line or header (slowloris) and a keep-alive connection left
//!   idle. A request stays in flight until its answer's body is fully written (a proxied
//!   stream may last minutes). Request bodies are bounded in time by the API's body-read
//!   timeout (`api::read_body`).
//! - A write the client does not take for [`ConnLimits::idle_timeout`] (it stopped
//!   reading, its window is full) closes the connection ([`StallWrites`]): a client that
//!   never reads holds at most the socket buffers and one body frame, never a stream.
//! - Headers are bounded in size (`MAX_BUF_BYTES`), so each connection's memory is bounded
//!   and a flood's memory goes back when its connections close.
//! - A request hyper cannot parse (garbage request line, bad header, too many headers, head
//!   too large, URI too long) is answered by hyper itself, below every handler, with an
//!   empty body; [`JsonErrors`] rewrites that answer into the documented `{"error": ...}`.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Largest buffered request head per connection, bytes (hyper's read buffer; its minimum is
/// 8 KiB). 64 KiB holds any sane header set.
pub const MAX_BUF_BYTES: usize = 64 * 1024;

/// Default cap on open HTTP connections: a quarter of the usual 1024-descriptor soft limit,
/// leaving room for sensor files, the Unix socket's clients and the history.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// Connection limits.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// A connection without a request in flight for this long is closed.
    pub idle_timeout: Duration,
}

struct Entry {
    in_flight: Arc<AtomicUsize>,
    last: Arc<Mutex<Instant>>,
    kill: Arc<Notify>,
}

/// Open connections, by id; shared with `/healthz` (it reports the count).
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<HashMap<u64, Entry>>>);

impl Registry {
    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Make room for one more connection: true when there is room (possibly after closing
    /// the connection idle the longest).
    fn make_room(&self, max: usize) -> bool {
        let mut reg = self.lock();
        if reg.len() < max {
            return true;
        }
        let victim = reg
            .iter()
            .filter(|(_, e)| e.in_flight.load(Ordering::SeqCst) == 0)
            .min_by_key(|(_, e)| *e.last.lock().unwrap_or_else(|p| p.into_inner()))
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                if let Some(e) = reg.remove(&id) {
                    e.kill.notify_one();
                }
                true
            }
            None => false,
        }
    }

    fn close_all(&self) {
        for (_, e) in self.lock().drain() {
            e.kill.notify_one();
        }
    }
}

/// Serve `app` on `listener` until `shutdown` resolves.
pub async fn serve<F>(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    registry: Registry,
    shutdown: F,
) where
    F: Future<Output = ()>,
{
    tokio::pin!(shutdown);
    let mut next_id = 0u64;
    loop {
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            acc = listener.accept() => match acc {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of descriptors (EMFILE) and the like: wait instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if !registry.make_room(limits.max_connections) {
            drop(stream); // every slot is busy with a request: closed at once
            continue;
        }
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let entry = Entry {
            in_flight: Arc::new(AtomicUsize::new(0)),
            last: Arc::new(Mutex::new(Instant::now())),
            kill: Arc::new(Notify::new()),
        };
        let (in_flight, last, kill) = (
            Arc::clone(&entry.in_flight),
            Arc::clone(&entry.last),
            Arc::clone(&entry.kill),
        );
        registry.lock().insert(id, entry);
        let reg = registry.clone();
        let svc = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let (f, l) = (Arc::clone(&in_flight), Arc::clone(&last));
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                use hyper::service::Service;
                f.fetch_add(1, Ordering::SeqCst);
                // Dropped when the answer's body ends (or the connection goes).
                let guard = InFlight {
                    in_flight: Arc::clone(&f),
                    last: Arc::clone(&l),
                };
                let fut = svc.call(req);
                async move {
                    let r = fut.await;
                    r.map(|res| {
                        res.map(|body| {
                            axum::body::Body::new(Tracked {
                                inner: body,
                                guard: Some(guard),
                            })
                        })
                    })
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.idle_timeout)
                .max_buf_size(MAX_BUF_BYTES)
                .serve_connection(
                    JsonErrors::new(TokioIo::new(StallWrites::new(stream, limits.idle_timeout))),
                    service,
                );
            let idle = async {
                loop {
                    if in_flight.load(Ordering::SeqCst) > 0 {
                        tokio::time::sleep(limits.idle_timeout).await;
                        continue;
                    }
                    let since = *last.lock().unwrap_or_else(|p| p.into_inner());
                    if since.elapsed() >= limits.idle_timeout {
                        break;
                    }
                    tokio::time::sleep_until(since + limits.idle_timeout).await;
                }
            };
            tokio::select! {
                _ = conn => {}
                () = kill.notified() => {}
                () = idle => {}
            }
            reg.lock().remove(&id);
        });
    }
    registry.close_all();
}

/// The status lines hyper writes for its own answers to a request it could not parse
/// (`hyper::proto::h1::role::Server::on_error`: 400, 414, 431), with the JSON error of each.
const PARSE_ERRORS: [(&[u8], &str); 3] = [
    (
        b"HTTP/1.1 400 ",
        "malformed HTTP request: the request line or a header could not be parsed; send HTTP/1.1 (METHOD /path HTTP/1.1, then Name: value headers)",
    ),
    (
        b"HTTP/1.1 431 ",
        "request head too large (at most 64 KiB and 100 headers): send fewer or shorter headers",
    ),
    (
        b"HTTP/1.1 414 ",
        "request URI too long: shorten the path and query",
    ),
];

/// A connection's I/O that turns hyper's own empty-bodied parse-error answers into JSON.
///
/// hyper answers a request it cannot parse before any service sees it, with a bare status
/// head and no body, then closes the connection; it has no hook to change that answer. The
/// answer is recognised on its way out: a write that is exactly a head starting with one of
/// [`PARSE_ERRORS`]' status lines and saying `content-length: 0` (every answer of the API's
/// own handlers has a JSON body, so none matches). It is replaced by the same status line
/// with a JSON body and `connection: close`. Vectored writes are declined so that hyper
/// hands each answer over as one buffer. A parse error right after a pipelined request
/// whose answer shares the write keeps hyper's bare answer (the head is not at the start).
pub struct JsonErrors<T> {
    inner: T,
    /// A replacement being written: its bytes, how many are written, and the length of the
    /// buffer hyper asked to write (reported as written once the replacement is).
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<T> JsonErrors<T> {
    /// Wraps a connection's I/O.
    pub fn new(inner: T) -> Self {
        JsonErrors {
            inner,
            pending: None,
        }
    }
}

/// The JSON answer replacing hyper's bare answer in `buf`, if `buf` is one.
fn json_answer(buf: &[u8]) -> Option<Vec<u8>> {
    let (_, message) = PARSE_ERRORS.iter().find(|(p, _)| buf.starts_with(p))?;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    if buf.len() != head_end + 4 {
        return None;
    }
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let empty = head
        .lines()
        .skip(1)
        .any(|l| l.eq_ignore_ascii_case("content-length: 0"));
    if !empty {
        return None;
    }
    let status_line = head.lines().next()?;
    let body = serde_json::json!({ "error": message }).to_string();
    Some(
        format!(
            "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for JsonErrors<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for JsonErrors<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.pending.is_none() {
            match json_answer(buf) {
                Some(answer) => this.pending = Some((answer, 0, buf.len())),
                None => return std::pin::Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        while let Some((answer, done, asked)) = this.pending.as_mut() {
            if *done == answer.len() {
                let asked = *asked;
                this.pending = None;
                return Poll::Ready(Ok(asked));
            }
            match std::pin::Pin::new(&mut this.inner).poll_write(cx, &answer[*done..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => *done += n,
                other => return other,
            }
        }
        Poll::Ready(Ok(0))
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// A request in flight on a connection: dropped when its answer is fully written.
struct InFlight {
    in_flight: Arc<AtomicUsize>,
    last: Arc<Mutex<Instant>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An answer's body that keeps its request in flight until it ends.
struct Tracked {
    inner: axum::body::Body,
    guard: Option<InFlight>,
}

impl http_body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(r, std::task::Poll::Ready(None)) {
            self.guard = None;
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A connection whose writes fail once one has waited `timeout` for the peer to take it
/// (the peer stopped reading): hyper then closes the connection and drops the answer.
pub struct StallWrites<T> {
    inner: T,
    timeout: Duration,
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<T> StallWrites<T> {
    pub fn new(inner: T, timeout: Duration) -> Self {
        StallWrites {
            inner,
            timeout,
            timer: None,
        }
    }

    fn stalled<R>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        r: std::task::Poll<std::io::Result<R>>,
    ) -> std::task::Poll<std::io::Result<R>> {
        use std::future::Future;
        use std::task::Poll;
        match r {
            Poll::Ready(v) => {
                self.timer = None;
                Poll::Ready(v)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let t = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match t.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client stopped reading",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for StallWrites<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for StallWrites<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.stalled(cx, r)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.stalled(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.stalled(cx, r)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_hypers_bare_parse_error_answers_are_rewritten() {
        let bare = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let a = String::from_utf8(super::json_answer(bare).unwrap()).unwrap();
        assert!(
            a.starts_with("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"),
            "{a}"
        );
        assert!(a.ends_with("\"}"), "{a}");
        // An answer of our own handlers (a body), another status, a head with a body after.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{\"error\":\"\"}";
        assert!(super::json_answer(ours).is_none());
        assert!(
            super::json_answer(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none()
        );
        assert!(super::json_answer(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 200 OK"
        )
        .is_none());
    }
}
