//! The MLLP destination: sends HL7 v2 over a persistent connection and
//! waits for each ACK. AA/CA is delivered; AE/CE and AR/CR follow the
//! destination's `on_error` / `on_reject` policy; a timeout or a dropped
//! connection reconnects and retries.

use std::sync::Mutex;

use bytes::BytesMut;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{BoxFuture, Delivery, DeliveryError, Destination};
use crate::config::{AckPolicy, MllpDestinationConfig};
use crate::mllp::{Decoder, Frame, framed};

/// A plain or TLS connection.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

struct Connection {
    stream: Box<dyn Stream>,
    decoder: Decoder,
    buf: BytesMut,
}

/// Sends HL7 v2 to an MLLP receiver.
pub struct MllpDestination {
    config: MllpDestinationConfig,
    /// MLLP over TLS: the connector and the name the server's certificate
    /// must carry, or why they could not be made (each delivery then fails
    /// with that reason and stays pending).
    tls: Option<Result<(TlsConnector, ServerName<'static>), String>>,
    /// Idle connections, one per concurrent delivery at most.
    idle: Mutex<Vec<Connection>>,
}

impl MllpDestination {
    /// A destination for these settings.
    pub fn new(config: MllpDestinationConfig) -> MllpDestination {
        let tls = config.tls.as_ref().map(|t| {
            let client = crate::tls::client_config(t).map_err(|e| e.to_string())?;
            let name = crate::tls::server_name(t, &config.address).map_err(|e| e.to_string())?;
            Ok((TlsConnector::from(client), name))
        });
        MllpDestination {
            config,
            tls,
            idle: Mutex::new(Vec::new()),
        }
    }

    async fn connection(&self) -> Result<Connection, DeliveryError> {
        if let Some(c) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(c);
        }
        let stream = tokio::time::timeout(
            self.config.timeout,
            TcpStream::connect(&self.config.address),
        )
        .await
        .map_err(|_| {
            DeliveryError::Transient(format!("connecting to {} timed out", self.config.address))
        })?
        .map_err(|e| {
            DeliveryError::Transient(format!("cannot connect to {}: {e}", self.config.address))
        })?;
        let _ = stream.set_nodelay(true);
        let stream: Box<dyn Stream> = match &self.tls {
            None => Box::new(stream),
            Some(Err(reason)) => {
                return Err(DeliveryError::Transient(format!("TLS settings: {reason}")));
            }
            Some(Ok((connector, name))) => {
                let tls = tokio::time::timeout(
                    self.config.timeout,
                    connector.connect(name.clone(), stream),
                )
                .await
                .map_err(|_| {
                    DeliveryError::Transient(format!(
                        "TLS handshake with {} timed out",
                        self.config.address
                    ))
                })?
                .map_err(|e| {
                    DeliveryError::Transient(format!(
                        "TLS handshake with {} failed: {e}",
                        self.config.address
                    ))
                })?;
                Box::new(tls)
            }
        };
        Ok(Connection {
            stream,
            decoder: Decoder::new(16 * 1024 * 1024),
            buf: BytesMut::with_capacity(4096),
        })
    }

    async fn exchange(&self, c: &mut Connection, message: &[u8]) -> Result<Vec<u8>, DeliveryError> {
        let lost = |e: std::io::Error| {
            DeliveryError::Transient(format!("connection to {} lost: {e}", self.config.address))
        };
        let frame = framed(message).map_err(|e| DeliveryError::Permanent(e.to_string()))?;
        c.stream.write_all(&frame).await.map_err(lost)?;
        loop {
            if let Some(frame) = c.decoder.decode(&mut c.buf) {
                return match frame {
                    Frame::Message(m) => Ok(m.to_vec()),
                    Frame::TooLarge { .. } => Err(DeliveryError::Transient("ACK too large".into())),
                };
            }
            if c.stream.read_buf(&mut c.buf).await.map_err(lost)? == 0 {
                return Err(DeliveryError::Transient(format!(
                    "{} closed the connection before the ACK",
                    self.config.address
                )));
            }
        }
    }
}

impl Destination for MllpDestination {
    fn deliver<'a>(&'a self, d: &'a Delivery) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let ct = d.output.message.content_type.as_str();
            if ct != "application/hl7-v2" && ct != "x-application/hl7-v2+er7" {
                // The content type is the plugin's text: not echoed.
                tracing::debug!(message_id = %d.message_id, content_type = %crate::plugins::text::escape(ct), "not HL7 v2");
                return Err(DeliveryError::Permanent(
                    "an MLLP destination takes HL7 v2 only (application/hl7-v2); this output has another content type".into(),
                ));
            }
            let sent = &d.output.message.body;
            // Refused before connecting: a framing byte inside the output
            // would deliver a second, forged message.
            crate::mllp::check(sent).map_err(|e| DeliveryError::Permanent(e.to_string()))?;
            let control_id = weft_hl7::Message::parse(sent)
                .ok()
                .and_then(|m| m.get("MSH-10").ok().flatten())
                .unwrap_or_default();
            let mut conn = self.connection().await?;
            let ack =
                match tokio::time::timeout(self.config.timeout, self.exchange(&mut conn, sent))
                    .await
                {
                    Ok(Ok(ack)) => ack,
                    // The connection is in an unknown state: drop it.
                    Ok(Err(e)) => return Err(e),
                    Err(_) => {
                        return Err(DeliveryError::Transient(format!(
                            "no ACK from {} within {} s",
                            self.config.address,
                            self.config.timeout.as_secs()
                        )));
                    }
                };
            let parsed = weft_hl7::Message::parse(&ack)
                .map_err(|e| DeliveryError::Transient(format!("unreadable ACK: {e}")))?;
            let get = |p: &str| parsed.get(p).ok().flatten().unwrap_or_default();
            let (code, msa2) = (get("MSA-1"), get("MSA-2"));
            if !control_id.is_empty() && msa2 != control_id {
                // Out of step with the receiver: start a fresh connection.
                return Err(DeliveryError::Transient(format!(
                    "ACK for {:?} while waiting for {:?}",
                    crate::plugins::text::cap(&msa2, 64),
                    crate::plugins::text::cap(&control_id, 64)
                )));
            }
            if let Ok(mut idle) = self.idle.lock() {
                idle.push(conn);
            }
            let text = Some(get("ERR-8"))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| get("MSA-3"));
            let error_code = get("ERR-3");
            let outcome = |policy: AckPolicy| {
                // The receiver's text may quote the message: debug level only.
                tracing::debug!(message_id = %d.message_id, code = %code, text = %text, "receiver's ACK");
                let reason = format!(
                    "{} answered {code} (ERR-3 {error_code:?}; its text is logged at debug level)",
                    self.config.address
                );
                match policy {
                    AckPolicy::Retry => Err(DeliveryError::Transient(reason)),
                    AckPolicy::Fail => Err(DeliveryError::Permanent(reason)),
                }
            };
            match code.as_str() {
                "AA" | "CA" => Ok(()),
                "AE" | "CE" => outcome(self.config.on_error),
                "AR" | "CR" => outcome(self.config.on_reject),
                other => Err(DeliveryError::Transient(format!(
                    "unexpected MSA-1 {:?}",
                    crate::plugins::text::cap(other, 32)
                ))),
            }
        })
    }
}
