//! The MLLP source: HL7 v2 over TCP, one ACK per message.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weft_hl7::{AckCode, AckError, AckOptions, ErrorCode, Severity, build_ack};

use super::{Incoming, IntakeRefusal, take};
use crate::config::{MllpSourceConfig, SourceConfig};
use crate::metrics::metrics;
use crate::mllp::{Decoder, Frame, framed};
use crate::pipeline::{Answer, Pipeline};

/// Accepts connections until `shutdown`, then waits for open connections
/// to finish the messages they have started. With `tls` set, every
/// connection is TLS (a plain one is closed without an answer), and with a
/// client CA each client must present a certificate it signed.
pub async fn serve(
    listener: TcpListener,
    source: SourceConfig,
    mllp: MllpSourceConfig,
    tls: Option<Arc<crate::tls::TlsListener>>,
    pipeline: Arc<Pipeline>,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    let cap = crate::conncap::ConnectionCap::new(&source.name, source.max_connections);
    let ctx = Arc::new((source, mllp, pipeline));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let Some(permit) = cap.admit(remote) else { continue };
                    let _ = stream.set_nodelay(true);
                    tracing::debug!(source = %ctx.0.name, %remote, "connection opened");
                    let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
                    match &tls {
                        None => {
                            connections.spawn(async move {
                                connection(stream, remote, None, ctx, shutdown).await;
                                drop(permit);
                            });
                        }
                        Some(tls) => {
                            let tls = tls.clone();
                            connections.spawn(async move {
                                if let Some((stream, subject)) = tls.accept(stream, remote, ctx.1.idle_timeout).await {
                                    connection(stream, remote, subject, ctx, shutdown).await;
                                }
                                drop(permit);
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(source = %ctx.0.name, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.cancelled() => break,
        }
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn connection<S>(
    stream: S,
    remote: SocketAddr,
    peer_subject: Option<String>,
    ctx: Arc<(SourceConfig, MllpSourceConfig, Arc<Pipeline>)>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (source, mllp, pipeline) = (&ctx.0, &ctx.1, &ctx.2);
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut decoder = Decoder::new(mllp.max_frame_bytes);
    // The connection's first bytes, until its first frame: another
    // protocol is told apart before the decoder throws them away.
    let mut prefix: Vec<u8> = Vec::with_capacity(PREFIX_BYTES);
    let mut seen_frame = false;
    // Bytes outside frames since the last frame, and the deadlines: only a
    // frame keeps a connection open, and a frame has a deadline of its own.
    let mut junk_mark = 0;
    let mut idle_deadline = tokio::time::Instant::now() + mllp.idle_timeout;
    let mut frame_deadline = None;
    loop {
        if !seen_frame {
            let take = buf.len().min(PREFIX_BYTES - prefix.len());
            prefix.extend_from_slice(&buf[..take]);
            if let Some(other) = other_protocol(&prefix) {
                if JUNK_LOG.due(remote) {
                    tracing::warn!(source = %source.name, %remote, "{other} on an MLLP port; connection closed unanswered (logged once per peer every 10 minutes)");
                }
                return;
            }
        }
        while let Some(frame) = decoder.decode(&mut buf) {
            seen_frame = true;
            junk_mark = decoder.discarded().junk_bytes;
            idle_deadline = tokio::time::Instant::now() + mllp.idle_timeout;
            frame_deadline = None;
            let read = std::time::Instant::now();
            let (reply, close) = match frame {
                Frame::Message(body) => (
                    answer(
                        pipeline,
                        source,
                        body.to_vec(),
                        remote,
                        peer_subject.clone(),
                    )
                    .await,
                    false,
                ),
                Frame::TooLarge { limit } => {
                    metrics().refused(&source.name, "too_large");
                    tracing::warn!(source = %source.name, %remote, limit, "frame too large: NAK and close");
                    let err = AckError {
                        location: None,
                        code: ErrorCode::ValueTooLong,
                        severity: Severity::Error,
                        text: format!("message larger than {limit} bytes; connection closed"),
                    };
                    (
                        build_ack(None, AckCode::Reject, Some(&err), &ack_options()).to_bytes(),
                        true,
                    )
                }
            };
            metrics().answered(&source.name, read.elapsed());
            // An ACK is built by Weft, with plugin text escaped: MLLP can
            // always carry it. Should it not, nothing is sent and the
            // connection closes.
            let Ok(reply) = framed(&reply) else {
                tracing::error!(source = %source.name, %remote, "an ACK held an MLLP framing byte; connection closed");
                return;
            };
            if let Err(e) = wr.write_all(&reply).await {
                tracing::debug!(source = %source.name, %remote, error = %e, "could not send the ACK");
                return;
            }
            if close {
                return;
            }
        }
        if decoder.discarded().junk_bytes - junk_mark > JUNK_ALLOWANCE {
            if JUNK_LOG.due(remote) {
                tracing::warn!(source = %source.name, %remote, "more than {JUNK_ALLOWANCE} bytes outside MLLP frames; connection closed (logged once per peer every 10 minutes)");
            }
            return;
        }
        if decoder.in_frame() {
            seen_frame = true;
        }
        if shutdown.is_cancelled() && !decoder.in_frame() {
            return;
        }
        // In a frame: silence for idle_timeout_s, or the whole frame taking
        // longer than frame_timeout_s, closes it. Between frames: only a
        // frame resets the idle timer.
        let deadline = if decoder.in_frame() {
            let now = tokio::time::Instant::now();
            let whole = *frame_deadline.get_or_insert(now + mllp.frame_timeout);
            whole.min(now + mllp.idle_timeout)
        } else {
            idle_deadline
        };
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, rd.read_buf(&mut buf)) => r,
            _ = shutdown.cancelled(), if !decoder.in_frame() => return,
        };
        let d = decoder.discarded();
        match read {
            Err(_) => {
                if decoder.in_frame() {
                    tracing::warn!(source = %source.name, %remote, "frame stalled (idle_timeout_s) or not complete within frame_timeout_s; partial message dropped (never ACKed), connection closed");
                } else {
                    tracing::debug!(source = %source.name, %remote, "idle connection closed");
                }
                return;
            }
            Ok(Ok(0)) => {
                if decoder.in_frame() {
                    tracing::warn!(source = %source.name, %remote, "connection closed mid-frame; partial message dropped (never ACKed)");
                }
                if d.junk_bytes > 0 || d.partial_frames > 0 {
                    tracing::debug!(source = %source.name, %remote, junk_bytes = d.junk_bytes, partial_frames = d.partial_frames, "bytes outside frames were discarded");
                }
                return;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(source = %source.name, %remote, error = %e, "read failed");
                return;
            }
        }
    }
}

/// How many of a connection's first bytes are kept to tell another
/// protocol apart.
const PREFIX_BYTES: usize = 16;

/// Bytes a sender may send outside frames between two frames (stray line
/// breaks, say) before the connection is closed.
pub const JUNK_ALLOWANCE: usize = 1024;

/// Connections closed for junk or another protocol, logged once per peer.
static JUNK_LOG: std::sync::LazyLock<crate::peerlog::PeerLog> =
    std::sync::LazyLock::new(crate::peerlog::PeerLog::default);

/// What another protocol's opening bytes look like: an HTTP request line
/// (`POST /… HTTP/1.1`; its body may carry a frame, which would be taken
/// for one from an MLLP sender), or a TLS ClientHello on a plain port.
fn other_protocol(prefix: &[u8]) -> Option<&'static str> {
    if prefix.len() >= 3 && prefix[0] == 0x16 && prefix[1] == 0x03 {
        return Some("a TLS client");
    }
    let method = prefix.iter().take_while(|b| b.is_ascii_uppercase()).count();
    ((3..=7).contains(&method) && prefix.get(method) == Some(&b' ')).then_some("an HTTP request")
}

/// The first fields of MSH (through MSH-16: what an ACK reads), parsed
/// without the rest of the message: for answering a message too large or
/// too complex to parse whole. Bounded work, however the message is built
/// (a 4 MiB MSH of field separators included).
fn msh_only(body: &[u8]) -> Option<weft_hl7::Message> {
    const FIELDS: usize = 16;
    let text = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let fs = *text.get(3).filter(|_| text.starts_with(b"MSH"))?;
    let mut seen = 0;
    let end = text
        .iter()
        .position(|&b| {
            seen += usize::from(b == fs);
            b == b'\r' || b == b'\n' || seen > FIELDS
        })
        .unwrap_or(text.len());
    weft_hl7::Message::parse(&text[..end]).ok()
}

fn ack_options() -> AckOptions {
    AckOptions {
        control_id: ack_control_id(),
        timestamp: weft_hl7::datetime::now(),
    }
}

/// A control id for an ACK: unique, and short enough for MSH-10 in every
/// HL7 version (20 characters).
fn ack_control_id() -> String {
    let u = uuid::Uuid::now_v7();
    let v = u128::from_be_bytes(*u.as_bytes());
    // 64 bits of time and randomness, in base 36: at most 13 characters.
    let mut n = (v >> 64) as u64 ^ (v as u64);
    let mut s = Vec::with_capacity(14);
    s.push(b'W');
    loop {
        let d = (n % 36) as u8;
        s.push(if d < 10 { b'0' + d } else { b'A' + d - 10 });
        n /= 36;
        if n == 0 {
            break;
        }
    }
    String::from_utf8(s).unwrap_or_default()
}

/// The ACK for one framed message.
async fn answer(
    pipeline: &Pipeline,
    source: &SourceConfig,
    body: Vec<u8>,
    remote: SocketAddr,
    peer_subject: Option<String>,
) -> Vec<u8> {
    // Room in memory first, then the parse (which costs more than the
    // bytes): held until the ACK is built.
    let _held = match pipeline.budget().hold(&body, true).await {
        Ok(h) => h,
        Err(refused) => {
            metrics().refused(&source.name, refused.word());
            tracing::warn!(source = %source.name, %remote, "message refused: {refused}");
            // Busy: send again (AE); too large or complex: never (AR).
            let ack = match refused {
                super::budget::Refused::Busy { .. } => AckCode::Error,
                _ => AckCode::Reject,
            };
            let err = AckError {
                location: None,
                code: ErrorCode::InternalError,
                severity: Severity::Error,
                text: refused.to_string(),
            };
            let msh = msh_only(&body);
            return build_ack(msh.as_ref(), ack, Some(&err), &ack_options()).to_bytes();
        }
    };
    let parsed = weft_hl7::Message::parse(&body);
    let (message, header) = match parsed {
        Ok(m) => match m.header() {
            Ok(h) => (m, h),
            Err(e) => {
                let invalid = weft_hl7::InvalidMessage::from(e);
                metrics().refused(&source.name, "invalid");
                tracing::warn!(source = %source.name, %remote, error = %invalid, "message refused");
                return build_ack(
                    Some(&m),
                    AckCode::Reject,
                    Some(&invalid.ack_error()),
                    &ack_options(),
                )
                .to_bytes();
            }
        },
        Err(e) => {
            let invalid = weft_hl7::InvalidMessage::from(e);
            metrics().refused(&source.name, "invalid");
            tracing::warn!(source = %source.name, %remote, error = %invalid, "message refused");
            return build_ack(
                None,
                AckCode::Reject,
                Some(&invalid.ack_error()),
                &ack_options(),
            )
            .to_bytes();
        }
    };
    let incoming = Incoming {
        body,
        content_type: "application/hl7-v2".into(),
        control_id: header.control_id.clone(),
        sending_application: header.sending_application.clone(),
        sending_facility: header.sending_facility.clone(),
        message_type: header.message_type(),
        want_outputs: false,
        peer_subject,
    };
    let result = take(
        pipeline,
        source,
        incoming,
        Some(&message),
        Some(remote),
        true,
    )
    .await;
    let (code, error) = match result {
        Ok((_, Answer::Accepted | Answer::Transformed(_) | Answer::Delivered)) => {
            (AckCode::Accept, None)
        }
        Ok((id, Answer::Rejected(reason))) => {
            tracing::debug!(message_id = %id, "AR: {reason}");
            (AckCode::Reject, Some(app_error(reason)))
        }
        Ok((id, Answer::Failed(reason))) => {
            tracing::debug!(message_id = %id, "AE: {reason}");
            (AckCode::Error, Some(app_error(reason)))
        }
        Err(IntakeRefusal::BadHeader(bad)) => {
            tracing::warn!(source = %source.name, %remote, field = bad.field, "message refused: {}", bad.reason);
            (
                AckCode::Reject,
                Some(AckError {
                    location: Some(weft_hl7::ErrorLocation {
                        segment: "MSH".into(),
                        sequence: Some(1),
                        field: Some(bad.number),
                        component: None,
                    }),
                    code: if bad.too_long {
                        ErrorCode::ValueTooLong
                    } else {
                        ErrorCode::DataType
                    },
                    severity: Severity::Error,
                    text: bad.reason,
                }),
            )
        }
        Err(IntakeRefusal::NoRoute(t)) => {
            tracing::warn!(source = %source.name, message_type = %t, "no route: AR");
            (
                AckCode::Reject,
                Some(AckError {
                    location: Some(weft_hl7::ErrorLocation {
                        segment: "MSH".into(),
                        sequence: Some(1),
                        field: Some(9),
                        component: None,
                    }),
                    code: ErrorCode::UnsupportedMessageType,
                    severity: Severity::Error,
                    text: format!("no route takes {t}"),
                }),
            )
        }
        Err(IntakeRefusal::Duplicate { outcome, .. }) => match outcome {
            Answer::Rejected(reason) => (AckCode::Reject, Some(app_error(reason))),
            Answer::Failed(reason) => (AckCode::Error, Some(app_error(reason))),
            _ => (AckCode::Accept, None),
        },
        Err(IntakeRefusal::NotRecorded(reason)) => (
            AckCode::Error,
            Some(app_error(format!("not recorded, send again: {reason}"))),
        ),
        Err(IntakeRefusal::ShuttingDown | IntakeRefusal::Busy) => (
            AckCode::Error,
            Some(app_error(
                "the receiver is shutting down; send again".into(),
            )),
        ),
    };
    build_ack(Some(&message), code, error.as_ref(), &ack_options()).to_bytes()
}

fn app_error(text: String) -> AckError {
    AckError {
        location: None,
        code: ErrorCode::InternalError,
        severity: Severity::Error,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_msh_fields_are_read() {
        let pipes = [
            b"MSH|^~\\&|APP|FAC|WEFT|EDGE|2024||ADT^A01|C1|P|2.5.1".as_slice(),
            &vec![b'|'; 1 << 20],
        ]
        .concat();
        let m = msh_only(&pipes).unwrap();
        assert_eq!(m.get("MSH-10").unwrap().as_deref(), Some("C1"));
        assert!(m.to_text().len() < 100, "{} bytes", m.to_text().len());
        assert!(msh_only(b"junk").is_none());
    }
}
