//! The HTTP/1 server loop shared by the HTTP source and the admin API:
//! accept, serve each connection with a handler, stop gracefully; and JSON
//! replies.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::pipeline::Pipeline;

/// A response with a buffered body.
pub type Reply = Response<Full<Bytes>>;

/// The subject of the client certificate a request's connection presented
/// (mutual TLS), in the request's extensions.
#[derive(Debug, Clone)]
pub struct PeerSubject(pub String);

/// The local address a request's connection came in on, in the request's
/// extensions.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// Serves `listener` with `handle` until `shutdown`, then lets requests in
/// flight finish. `what` names the server in the log; connections past
/// `cap` are closed as they come. With `tls`, every
/// connection is HTTPS (a failed handshake closes it and is logged once per
/// peer), and a client certificate's subject is put in each request's
/// extensions as [`PeerSubject`].
pub async fn serve<H, F>(
    listener: TcpListener,
    what: String,
    tls: Option<Arc<crate::tls::TlsListener>>,
    cap: crate::conncap::ConnectionCap,
    handle: Arc<H>,
    shutdown: CancellationToken,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let Some(permit) = cap.admit(remote) else { continue };
                    let handle = handle.clone();
                    let watcher = graceful.watcher();
                    let local = stream.local_addr().ok();
                    let Some(tls) = tls.clone() else {
                        let conn = connection(TokioIo::new(stream), remote, local, None, handle);
                        tokio::spawn(async move {
                            let _ = watcher.watch(conn).await;
                            drop(permit);
                        });
                        continue;
                    };
                    tokio::spawn(async move {
                        if let Some((stream, subject)) = tls.accept(stream, remote, crate::tls::HANDSHAKE_TIMEOUT).await {
                            let _ = watcher.watch(connection(TokioIo::new(stream), remote, local, subject, handle)).await;
                        }
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(server = %what, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.cancelled() => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// One HTTP/1 connection served with `handle`.
fn connection<IO, H, F>(
    io: IO,
    remote: SocketAddr,
    local: Option<SocketAddr>,
    subject: Option<String>,
    handle: Arc<H>,
) -> impl hyper_util::server::graceful::GracefulConnection + Send
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let service = service_fn(move |mut req: Request<Incoming>| {
        if let Some(s) = &subject {
            req.extensions_mut().insert(PeerSubject(s.clone()));
        }
        if let Some(l) = local {
            req.extensions_mut().insert(LocalAddr(l));
        }
        let reply = handle(req, remote);
        async move { Ok::<_, Infallible>(reply.await) }
    });
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(io, service)
}

/// A JSON reply.
pub fn reply(status: StatusCode, body: Value) -> Reply {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// `{"error": message}` with a status.
pub fn error(status: StatusCode, message: impl Into<String>) -> Reply {
    reply(status, json!({ "error": message.into() }))
}

/// 405 with the methods the path allows.
pub fn method_not_allowed(allow: &'static str) -> Reply {
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    r
}

/// The pipeline's counters and pending deliveries per destination, as
/// JSON. Reads the journal: call it off the async threads.
pub fn pipeline_status(pipeline: &Pipeline, stopping: bool) -> Value {
    let s = &pipeline.stats;
    let pending: serde_json::Map<String, Value> = pipeline
        .journal()
        .pending_counts()
        .unwrap_or_default()
        .into_iter()
        .map(|(d, n)| (d, Value::from(n)))
        .collect();
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    json!({
        "status": if stopping { "stopping" } else { "ok" },
        "received": n(&s.received),
        "transformed": n(&s.transformed),
        "rejected": n(&s.rejected),
        "failed": n(&s.failed),
        "delivered": n(&s.delivered),
        "delivery_failed": n(&s.delivery_failed),
        "delivery_retries": n(&s.delivery_retries),
        "queued": pipeline.queued(),
        "pending": pending,
    })
}
