//! TLS on the runtime's listeners: the acceptor a renewed certificate
//! replaces, the handshake with its time limit, and the log of failed
//! handshakes. The settings and the rustls configurations they build are
//! the `weft-tls` crate, re-exported here.

use std::net::SocketAddr;

pub use weft_tls::*;

/// The TLS side of a listener: its acceptor (which a renewed certificate
/// replaces for new connections) and its handshake-failure log.
pub struct TlsListener {
    name: String,
    acceptor: arc_swap::ArcSwap<tokio_rustls::TlsAcceptor>,
    failures: HandshakeFailures,
}

impl TlsListener {
    /// The TLS side of listener `name` for `settings`; `None` when it
    /// speaks plain text.
    pub fn new(
        name: &str,
        settings: Option<&ServerTls>,
    ) -> Result<Option<std::sync::Arc<TlsListener>>, TlsError> {
        let Some(t) = settings else { return Ok(None) };
        Ok(Some(std::sync::Arc::new(TlsListener {
            name: name.to_string(),
            acceptor: arc_swap::ArcSwap::from_pointee(tokio_rustls::TlsAcceptor::from(
                server_config(t)?,
            )),
            failures: HandshakeFailures::default(),
        })))
    }

    /// Serves the certificate and key of `settings` to connections
    /// accepted from now on; open connections keep theirs.
    pub fn renew(&self, settings: &ServerTls) -> Result<(), TlsError> {
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(settings)?);
        self.acceptor.store(std::sync::Arc::new(acceptor));
        Ok(())
    }

    /// Completes the handshake of an accepted connection within `limit`
    /// (at most [`HANDSHAKE_TIMEOUT`]): the TLS stream and the subject of
    /// the client's certificate, or `None` (the failure is logged once per
    /// peer every ten minutes, and the connection is dropped).
    pub async fn accept(
        &self,
        stream: tokio::net::TcpStream,
        remote: SocketAddr,
        limit: std::time::Duration,
    ) -> Option<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        Option<String>,
    )> {
        let wait = limit.min(HANDSHAKE_TIMEOUT);
        let acceptor = self.acceptor.load_full();
        match tokio::time::timeout(wait, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                let subject = peer_subject(tls.get_ref().1.peer_certificates());
                Some((tls, subject))
            }
            Ok(Err(e)) => {
                self.failures.report(&self.name, remote, &e.to_string());
                None
            }
            Err(_) => {
                self.failures
                    .report(&self.name, remote, "no TLS handshake in time");
                None
            }
        }
    }
}

/// How long a TLS client has to finish its handshake.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Handshake failures, logged once per peer address every ten minutes.
#[derive(Default)]
struct HandshakeFailures(crate::peerlog::PeerLog);

impl HandshakeFailures {
    /// Logs a failed handshake of `remote` on listener `source`.
    fn report(&self, source: &str, remote: SocketAddr, reason: &str) {
        crate::metrics::metrics().handshake_failed(source);
        if self.0.due(remote) {
            tracing::warn!(source, %remote, reason = %crate::plugins::text::escape(reason), "TLS handshake failed; connection closed (logged once per peer every 10 minutes)");
        } else {
            tracing::debug!(source, %remote, reason, "TLS handshake failed");
        }
    }
}
