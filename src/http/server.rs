//! The listener and the connections it accepts, held to what a hostile internet
//! sends: headers must arrive within `--header-read-timeout`, a connection silent
//! for `--idle-timeout` is closed, one client address holds at most
//! `--max-connections-per-client` (one past it is answered 429
//! `TOO_MANY_CLIENT_CONNECTIONS`), and at most `--max-connections` are open (one
//! past it is answered 503 `TOO_MANY_CONNECTIONS`); a refused connection is
//! answered and closed without holding a task. HTTP/2 streams and header lists are
//! bounded. axum's `serve` has none of these.
//!
//! Shutdown runs in order: the token is cancelled (readiness turns 503 and
//! websockets close), the listener keeps accepting for `--shutdown-drain` so load
//! balancers see the 503 and move away, then it closes, open connections are asked
//! to finish, and whatever is still open after `--shutdown-timeout` is dropped.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::error::error_body;
use super::media::JSON;
use crate::fair_share::{ConnectionHold, FairShare, TOO_MANY_CLIENT_CONNECTIONS};

/// Concurrent streams one HTTP/2 connection may open.
const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Largest HTTP/2 header list, and most HTTP/1 headers, one request may send.
const MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// HTTP/2 pings that find a dead peer.
const HTTP2_KEEPALIVE: Duration = Duration::from_secs(20);
/// How long an accept error (no file descriptor left) pauses the accept loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What the answer past `--max-connections` says, written straight to the socket.
static TOO_MANY_CONNECTIONS: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let message = "the gateway holds its maximum of open connections";
    refusal("503 Service Unavailable", "TOO_MANY_CONNECTIONS", message)
});

/// Limits on connections and the shutdown sequence's timers.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionSettings {
    /// Time allowed to send a request's headers (HTTP/1).
    pub header_read_timeout: Duration,
    /// A connection with no byte either way for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// How long readiness answers 503 before the listener closes.
    pub shutdown_drain: Duration,
    /// How long open connections get to finish once the listener is closed.
    pub shutdown_timeout: Duration,
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then runs the
/// shutdown sequence. With `clients`, each client address's connections are capped
/// (see [`FairShare::hold_connection`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ConnectionSettings,
    clients: Option<FairShare>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    let closing = CancellationToken::new();
    let mut connections = JoinSet::new();
    let drained = async {
        shutdown.cancelled().await;
        tokio::time::sleep(settings.shutdown_drain).await;
    };
    tokio::pin!(drained);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut drained => break,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed; pausing the listener");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // The client's own cap first, so one client is refused before it fills the
        // gateway's. Best effort, without waiting: a full send buffer drops the answer.
        let client = match clients
            .as_ref()
            .map(|clients| clients.hold_connection(remote))
        {
            Some(Err(refused)) => {
                let answer = refusal(
                    "429 Too Many Requests",
                    TOO_MANY_CLIENT_CONNECTIONS,
                    &refused.to_string(),
                );
                let _ = stream.try_write(&answer);
                tracing::warn!(%remote, %refused, "connection refused: the client holds its maximum");
                continue;
            }
            Some(Ok(held)) => held,
            None => None,
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            let _ = stream.try_write(&TOO_MANY_CONNECTIONS);
            tracing::warn!(%remote, max_connections = settings.max_connections, "connection refused: too many open");
            continue;
        };
        // Small writes go out at once: a subscription event is a few hundred bytes,
        // and with Nagle's algorithm one written while the previous is unacknowledged
        // waits for the peer's (possibly delayed) acknowledgement.
        let _ = stream.set_nodelay(true);
        let stream = Tracked {
            inner: stream,
            activity: Arc::new(Activity::new()),
            _permit: permit,
            _client: client,
        };
        connections.spawn(serve_connection(
            stream,
            remote,
            router.clone(),
            settings,
            closing.clone(),
        ));
    }
    drop(listener);
    closing.cancel();
    let finished = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(settings.shutdown_timeout, finished)
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open at the shutdown deadline; dropping them"
        );
        connections.shutdown().await;
    }
}

/// One connection, HTTP/1 or HTTP/2, until it ends, idles out or is closed.
async fn serve_connection(
    stream: Tracked,
    remote: SocketAddr,
    router: Router,
    settings: ConnectionSettings,
    closing: CancellationToken,
) {
    let activity = Arc::clone(&stream.activity);
    let io = TokioIo::new(stream);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        router.clone().oneshot(request)
    });
    let builder = builder(settings);
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let mut asked_to_finish = false;
    loop {
        let idle_deadline = activity.last() + settings.idle_timeout;
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%remote, %error, "connection ended with an error");
                }
                return;
            }
            () = closing.cancelled(), if !asked_to_finish => {
                connection.as_mut().graceful_shutdown();
                asked_to_finish = true;
            }
            () = tokio::time::sleep_until(idle_deadline), if !asked_to_finish => {
                if activity.last() + settings.idle_timeout <= Instant::now() {
                    tracing::debug!(%remote, "closing an idle connection");
                    connection.as_mut().graceful_shutdown();
                    asked_to_finish = true;
                }
            }
        }
    }
}

fn builder(settings: ConnectionSettings) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(MAX_HEADER_LIST_SIZE)
        .keep_alive_interval(HTTP2_KEEPALIVE)
        .keep_alive_timeout(settings.header_read_timeout);
    builder
}

/// When a connection last moved a byte, as milliseconds since it opened.
struct Activity {
    opened: Instant,
    last_millis: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            last_millis: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let millis = self.opened.elapsed().as_millis() as u64;
        self.last_millis.store(millis, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.opened + Duration::from_millis(self.last_millis.load(Ordering::Relaxed))
    }
}

/// A socket that records its activity and holds its connection's permit and its
/// client's place: they follow it into a websocket upgrade, so an open websocket
/// counts towards `--max-connections` and `--max-connections-per-client` (its own
/// pings and timeouts replace the idle timeout).
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    _permit: OwnedSemaphorePermit,
    _client: Option<ConnectionHold>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A complete HTTP/1.1 answer with `status` and a GraphQL error body, for a
/// connection refused before HTTP is served on it.
fn refusal(status: &str, code: &str, message: &str) -> Vec<u8> {
    let body = error_body(code, message);
    let mut answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {JSON}\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend(body);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_http_response_with_a_coded_body() {
        let text = std::str::from_utf8(&TOO_MANY_CONNECTIONS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["code"],
            "TOO_MANY_CONNECTIONS"
        );
    }
}
