//! The HTTP source: messages POSTed to a path, and `GET /health`.
//!
//! `POST <path>` with `Content-Type` `application/hl7-v2`,
//! `x-application/hl7-v2+er7`, `application/fhir+json` or `application/json`
//! answers 202 with the message id (on-receipt), 200 with the outputs
//! (after-transform) or 200 once delivered (after-delivery); 400 for a
//! malformed body, 413 over the size limit, 415 for another type, 422 when
//! no route takes it or a plugin rejects it, 500 when a plugin fails, 503
//! with `Retry-After` when the queue is full or the runtime is stopping.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming as Body;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Incoming, IntakeRefusal, take};
use crate::config::{HttpSourceConfig, SourceConfig};
use crate::httpd::{self, Reply, error, method_not_allowed, reply};
use crate::metrics::metrics;
use crate::pipeline::{Answer, Pipeline};

struct Ctx {
    source: SourceConfig,
    http: HttpSourceConfig,
    pipeline: Arc<Pipeline>,
    shutdown: CancellationToken,
}

/// Serves until `shutdown`, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    source: SourceConfig,
    http: HttpSourceConfig,
    tls: Option<Arc<crate::tls::TlsListener>>,
    pipeline: Arc<Pipeline>,
    shutdown: CancellationToken,
) {
    let what = format!("source {}", source.name);
    let cap = crate::conncap::ConnectionCap::new(&what, source.max_connections);
    let ctx = Arc::new(Ctx {
        source,
        http,
        pipeline,
        shutdown: shutdown.clone(),
    });
    let handler = Arc::new(move |req: Request<Body>, remote: SocketAddr| {
        let ctx = ctx.clone();
        async move { handle(req, &ctx, remote).await }
    });
    httpd::serve(listener, what, tls, cap, handler, shutdown).await;
}

/// Counts a message refused before the intake, for `reason`, and passes
/// on its answer.
fn refuse(ctx: &Ctx, reason: &'static str, answer: Reply) -> Reply {
    metrics().refused(&ctx.source.name, reason);
    answer
}

fn busy(seconds: u64, message: &str) -> Reply {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
    r
}

async fn handle(req: Request<Body>, ctx: &Ctx, remote: SocketAddr) -> Reply {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/health") => health(ctx).await,
        (&Method::POST, p) if p == ctx.http.path => {
            let started = std::time::Instant::now();
            let answer = intake(req, ctx, remote).await;
            metrics().answered(&ctx.source.name, started.elapsed());
            answer
        }
        (_, "/health") => method_not_allowed("GET"),
        (_, p) if p == ctx.http.path => method_not_allowed("POST"),
        _ => error(
            StatusCode::NOT_FOUND,
            format!("no such path; POST messages to {}", ctx.http.path),
        ),
    }
}

async fn health(ctx: &Ctx) -> Reply {
    let stopping = ctx.shutdown.is_cancelled();
    let pipeline = ctx.pipeline.clone();
    let status = tokio::task::spawn_blocking(move || httpd::pipeline_status(&pipeline, stopping))
        .await
        .unwrap_or_else(|_| json!({ "status": "unknown" }));
    reply(
        if stopping {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        },
        status,
    )
}

#[derive(PartialEq, Eq)]
enum Kind {
    Hl7,
    Json,
}

async fn intake(req: Request<Body>, ctx: &Ctx, remote: SocketAddr) -> Reply {
    let peer_subject = req
        .extensions()
        .get::<httpd::PeerSubject>()
        .map(|s| s.0.clone());
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let kind = match media.as_str() {
        "application/hl7-v2" | "x-application/hl7-v2+er7" => Kind::Hl7,
        "application/fhir+json" | "application/json" => Kind::Json,
        other => {
            return refuse(
                ctx,
                "unsupported_media_type",
                error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "unsupported content type {other:?}; send application/hl7-v2, x-application/hl7-v2+er7, application/fhir+json or application/json"
                    ),
                ),
            );
        }
    };
    let max = ctx.http.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        refuse(
            ctx,
            "too_large",
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {max} bytes"),
            ),
        )
    };
    if declared.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    // However slowly it trickles in, the body is read whole in time.
    let wait = ctx.http.body_timeout;
    let read = tokio::time::timeout(wait, Limited::new(req.into_body(), max).collect()).await;
    let Ok(read) = read else {
        tracing::warn!(source = %ctx.source.name, %remote, "request body not complete within body_timeout_s; 408");
        let mut r = error(
            StatusCode::REQUEST_TIMEOUT,
            format!("the body was not complete within {} s", wait.as_secs()),
        );
        r.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        return refuse(ctx, "timeout", r);
    };
    let body = match read {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Err(e) => {
            return refuse(
                ctx,
                "invalid",
                error(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                ),
            );
        }
    };
    // Room in memory before the parse (which costs more than the bytes),
    // held until the answer.
    let _held = match ctx.pipeline.budget().hold(&body, kind == Kind::Hl7).await {
        Ok(h) => h,
        Err(refused @ crate::sources::budget::Refused::Busy { .. }) => {
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, refused.to_string());
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return refuse(ctx, refused.word(), r);
        }
        Err(refused) => {
            let word = refused.word();
            return refuse(
                ctx,
                word,
                error(StatusCode::PAYLOAD_TOO_LARGE, refused.to_string()),
            );
        }
    };
    // The parsed HL7 message goes along: its ordering keys are read from it.
    // MLLP framing bytes inside an HL7 message would split it in two on the
    // way to an MLLP destination: refused at the door.
    let not_hl7 = |e: &dyn std::fmt::Display| {
        refuse(
            ctx,
            "invalid",
            error(
                StatusCode::BAD_REQUEST,
                format!("not an acceptable HL7 v2 message: {e}"),
            ),
        )
    };
    if kind == Kind::Hl7
        && let Err(e) = crate::mllp::check(&body)
    {
        return not_hl7(&e);
    }
    let (incoming, hl7) = match kind {
        Kind::Hl7 => match weft_hl7::parse_and_check(&body) {
            Ok((m, h)) => (
                Incoming {
                    control_id: h.control_id.clone(),
                    sending_application: h.sending_application.clone(),
                    sending_facility: h.sending_facility.clone(),
                    message_type: h.message_type(),
                    body,
                    content_type: "application/hl7-v2".into(),
                    want_outputs: true,
                    peer_subject: peer_subject.clone(),
                },
                Some(m),
            ),
            Err(e) => return not_hl7(&e),
        },
        Kind::Json => match serde_json::from_slice::<Value>(&body) {
            Ok(v) => (
                Incoming {
                    control_id: String::new(),
                    sending_application: String::new(),
                    sending_facility: String::new(),
                    message_type: v
                        .get("resourceType")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    body,
                    content_type: media,
                    want_outputs: true,
                    peer_subject,
                },
                None,
            ),
            Err(e) => {
                return refuse(
                    ctx,
                    "invalid",
                    error(StatusCode::BAD_REQUEST, format!("not valid JSON: {e}")),
                );
            }
        },
    };
    match take(
        &ctx.pipeline,
        &ctx.source,
        incoming,
        hl7.as_ref(),
        Some(remote),
        false,
    )
    .await
    {
        Err(IntakeRefusal::Busy) => busy(1, "the queue is full; retry shortly"),
        Err(IntakeRefusal::ShuttingDown) => busy(5, "the runtime is stopping; retry shortly"),
        Err(IntakeRefusal::NotRecorded(reason)) => {
            busy(5, &format!("not recorded, retry: {reason}"))
        }
        Err(IntakeRefusal::Duplicate { original, outcome }) => match outcome {
            Answer::Rejected(r) => reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "message_id": original, "duplicate": true, "error": r }),
            ),
            Answer::Failed(r) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "message_id": original, "duplicate": true, "error": r }),
            ),
            _ => reply(
                StatusCode::OK,
                json!({ "message_id": original, "duplicate": true }),
            ),
        },
        Err(IntakeRefusal::BadHeader(bad)) => error(StatusCode::BAD_REQUEST, bad.reason),
        Err(IntakeRefusal::NoRoute(t)) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "no route takes {}",
                if t.is_empty() { "this message" } else { &t }
            ),
        ),
        Ok((id, Answer::Accepted)) => reply(StatusCode::ACCEPTED, json!({ "message_id": id })),
        Ok((id, Answer::Delivered)) => reply(
            StatusCode::OK,
            json!({ "message_id": id, "delivered": true }),
        ),
        Ok((id, Answer::Transformed(outputs))) => {
            let outputs: Vec<Value> = outputs
                .unwrap_or_default()
                .into_iter()
                .map(|o| {
                    let body = if o.message.content_type.ends_with("json") {
                        serde_json::from_slice(&o.message.body).unwrap_or(Value::Null)
                    } else {
                        Value::String(String::from_utf8_lossy(&o.message.body).into_owned())
                    };
                    json!({
                        "destination": o.destination,
                        "content_type": o.message.content_type,
                        "body": body,
                    })
                })
                .collect();
            reply(
                StatusCode::OK,
                json!({ "message_id": id, "outputs": outputs }),
            )
        }
        Ok((id, Answer::Rejected(r))) => reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "message_id": id, "error": r }),
        ),
        Ok((id, Answer::Failed(r))) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "message_id": id, "error": r }),
        ),
    }
}
