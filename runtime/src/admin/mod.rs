//! The admin HTTP API: what operators do with `weft messages`, over HTTP,
//! beside the running runtime. Every request carries a bearer token
//! ([`tokens`]) and passes the checks of [`guard`]; what a token may see
//! and do is its role's. Message bodies (patient data) are only returned
//! on request (`?body=true`) and to the `phi` role.
//!
//! A bulk action names a search (`"filter"`, the parameters of `GET
//! /messages`) and the count of messages the operator was shown it finds
//! (`"expect"`); the action is done only while that is still the count,
//! else the answer is 409 with the count now (`"matched"`), to show and
//! confirm.
//!
//! | Request | Role | Answer |
//! |---|---|---|
//! | `GET /status` | read | counters, queue, pending deliveries per destination |
//! | `GET /metrics` | read | every metric, OpenMetrics text (see [`crate::metrics`]) |
//! | `GET /alerts` | read | alerts firing now, the last events, the configured alerts |
//! | `GET /plugins` | read | each plugin's live version, since when, what it replaced, its last refusal |
//! | `POST /reload` | operate | reloads changed plugins, tables and config now; what it did |
//! | `GET /messages?status=&source=&type=&control_id=&route=&since=&until=&limit=&page=` | read | messages, newest first |
//! | `GET /messages?patient=MRN&…` | phi | the messages about a patient (PID-3), recorded in the audit trail |
//! | `GET /messages/{id}` | read (reasons: phi) | one message: outcome, plugin versions, deliveries |
//! | `GET /messages/{id}?body=true` | phi | the same with the input and output bodies |
//! | `POST /messages/resend` `{"ids": [...]}`, `{"dead": true}` or `{"filter": {...}, "expect": N}` | operate | deliveries queued again |
//! | `POST /messages/reprocess` `{"ids": [...]}` or `{"filter": {...}, "expect": N}` | operate | messages queued to run through the plugins again |
//! | `POST /messages/purge` `{"before": "2026-11-01"}` | operate | settled messages deleted |
//! | `POST /journal/key` `{"path": "/etc/weft/journal-2.key"}` | operate | that key seals from now on; the journal is sealed again with it in the background |
//!
//! Under `/console` the same listener serves the web console
//! ([`crate::console`]), with a login and a session cookie instead of the
//! bearer header.

pub mod bulk;
pub mod guard;
pub mod json;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::bulk::Selected;
use self::guard::{Caller, Guard};
use self::json::{
    MessageDetail, MessageList, MessageSummary, PurgeReport, PurgeRequest, ReprocessReport,
    ReprocessRequest, ResendReport, ResendRequest, Selection,
};
use self::tokens::Role;
use crate::httpd::{self, LocalAddr, Reply, error, method_not_allowed, reply};
use crate::journal::audit::Record;
use crate::journal::query::Filter;
use crate::journal::{Journal, JournalError, time};
use crate::pipeline::Pipeline;
use crate::reload::Reloader;

struct Ctx {
    guard: Arc<Guard>,
    pipeline: Arc<Pipeline>,
    reloader: Option<Arc<Reloader>>,
    journal: Arc<dyn Journal>,
    started: Instant,
    shutdown: CancellationToken,
}

/// Serves the admin API until `shutdown`, over TLS with `tls`, at most
/// `max_connections` at once, letting in the requests `guard` lets in.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<crate::tls::TlsListener>>,
    max_connections: usize,
    guard: Arc<Guard>,
    pipeline: Arc<Pipeline>,
    reloader: Option<Arc<Reloader>>,
    shutdown: CancellationToken,
) {
    let console = Arc::new(crate::console::Console::new(
        guard.clone(),
        pipeline.clone(),
        reloader.clone(),
    ));
    let ctx = Arc::new(Ctx {
        guard,
        journal: pipeline.journal().clone(),
        pipeline,
        reloader,
        started: Instant::now(),
        shutdown: shutdown.clone(),
    });
    let handler = Arc::new(move |req: Request<Incoming>, remote: SocketAddr| {
        let ctx = ctx.clone();
        let console = console.clone();
        async move {
            let local = req.extensions().get::<LocalAddr>().map(|l| l.0);
            if req.uri().path() == "/console" || req.uri().path().starts_with("/console/") {
                return console.handle(req, remote, local).await;
            }
            match ctx.guard.check(req.method(), req.headers(), remote, local) {
                Ok(caller) => handle(req, caller, ctx).await,
                Err(refused) => {
                    crate::metrics::metrics().admin_refused(refused.kind);
                    refused.reply()
                }
            }
        }
    });
    let cap = crate::conncap::ConnectionCap::new("admin API", max_connections);
    httpd::serve(listener, "admin API".into(), tls, cap, handler, shutdown).await;
}

/// Answers 403 from the enclosing handler unless `caller` has `role`; a
/// refused `action` (patient data, an operator action) is audited.
macro_rules! needs {
    ($ctx:expr, $caller:expr, $role:expr, $what:expr, $action:expr, $ids:expr) => {
        if let Err(refused) = $caller.needs($role, $what) {
            let (ctx, caller, ids) = ($ctx.clone(), $caller.clone(), $ids);
            let result = format!("refused: needs the {} role", $role.as_str());
            let _ = tokio::task::spawn_blocking(move || {
                audit_after(&ctx, &caller, $action, ids, result)
            })
            .await;
            return refused.reply();
        }
    };
}

/// The most message ids one resend or reprocessing may name.
const MAX_IDS: usize = 10_000;

async fn handle(req: Request<Incoming>, caller: Caller, ctx: Arc<Ctx>) -> Reply {
    let path = req.uri().path().to_string();
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::GET, "/status") => blocking(move || Ok(status(&ctx))).await,
        (_, "/status") => method_not_allowed("GET"),
        (Method::GET, "/metrics") => blocking(move || Ok(metrics(&ctx))).await,
        (_, "/metrics") => method_not_allowed("GET"),
        (Method::GET, "/alerts") => reply(StatusCode::OK, alerts(&ctx)),
        (_, "/alerts") => method_not_allowed("GET"),
        (Method::GET, "/plugins") => match ctx.reloader.clone() {
            Some(r) => blocking(move || Ok(reply(StatusCode::OK, to_value(r.status())))).await,
            None => error(StatusCode::NOT_FOUND, "no plugin registry"),
        },
        (_, "/plugins") => method_not_allowed("GET"),
        (Method::GET, "/nodes") => blocking(move || nodes(&ctx)).await,
        (_, "/nodes") => method_not_allowed("GET"),
        (Method::POST, "/reload") => {
            needs!(
                ctx,
                caller,
                Role::Operate,
                "POST /reload",
                "reload",
                Vec::new()
            );
            match ctx.reloader.clone() {
                Some(r) => {
                    blocking(move || {
                        let report = r.reload();
                        let result = format!(
                            "swapped {}, refused {}, config {}",
                            report.swapped.len(),
                            report.refused.len(),
                            if report.config_applied {
                                "applied"
                            } else if report.config_refused.is_some() {
                                "refused"
                            } else {
                                "unchanged"
                            }
                        );
                        audit_after(&ctx, &caller, "reload", Vec::new(), result);
                        Ok(reply(StatusCode::OK, to_value(report.to_body())))
                    })
                    .await
                }
                None => error(StatusCode::NOT_FOUND, "no plugin registry"),
            }
        }
        (_, "/reload") => method_not_allowed("POST"),
        (Method::GET, "/messages") => match filter(&query) {
            Ok(f) => {
                if f.patient.is_some() {
                    // Which messages concern a patient is patient data.
                    needs!(
                        ctx,
                        caller,
                        Role::Phi,
                        "a search by patient (?patient=)",
                        "messages.search-patient",
                        Vec::new()
                    );
                }
                blocking(move || list(&ctx, &caller, &f)).await
            }
            Err(e) => error(StatusCode::BAD_REQUEST, e),
        },
        (_, "/messages") => method_not_allowed("GET"),
        (Method::POST, "/messages/resend") => {
            needs!(
                ctx,
                caller,
                Role::Operate,
                "POST /messages/resend",
                "messages.resend",
                Vec::new()
            );
            match body(req).await {
                Ok(b) => blocking(move || resend(&ctx, &caller, b)).await,
                Err(e) => e,
            }
        }
        (Method::POST, "/messages/purge") => {
            needs!(
                ctx,
                caller,
                Role::Operate,
                "POST /messages/purge",
                "messages.purge",
                Vec::new()
            );
            match body(req).await {
                Ok(b) => blocking(move || purge(&ctx, &caller, b)).await,
                Err(e) => e,
            }
        }
        (Method::POST, "/messages/reprocess") => {
            needs!(
                ctx,
                caller,
                Role::Operate,
                "POST /messages/reprocess",
                "messages.reprocess",
                Vec::new()
            );
            match body(req).await {
                Ok(b) => blocking(move || reprocess(&ctx, &caller, b)).await,
                Err(e) => e,
            }
        }
        (Method::POST, "/journal/key") => {
            needs!(
                ctx,
                caller,
                Role::Operate,
                "POST /journal/key",
                "journal.key-rotate",
                Vec::new()
            );
            match body(req).await {
                Ok(b) => blocking(move || rotate_key(&ctx, &caller, b)).await,
                Err(e) => e,
            }
        }
        (_, "/journal/key") => method_not_allowed("POST"),
        (_, "/messages/resend" | "/messages/purge" | "/messages/reprocess") => {
            method_not_allowed("POST")
        }
        (Method::GET, p) if p.starts_with("/messages/") => {
            let id = p["/messages/".len()..].to_string();
            let with_body = query.iter().any(|(k, v)| k == "body" && v == "true");
            if with_body {
                needs!(
                    ctx,
                    caller,
                    Role::Phi,
                    "a message's body (?body=true)",
                    "message.body",
                    vec![id.clone()]
                );
            }
            let reasons = caller.role >= Role::Phi;
            blocking(move || show(&ctx, &caller, &id, with_body, reasons)).await
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "no such path; try GET /status, GET /plugins, POST /reload, GET /messages, \
             GET /messages/{id}, POST /messages/resend, POST /messages/reprocess, POST /messages/purge, \
             POST /journal/key, GET /metrics, GET /alerts",
        ),
    }
}

/// Runs a journal query off the async threads.
async fn blocking(work: impl FnOnce() -> Result<Reply, JournalError> + Send + 'static) -> Reply {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request's task failed",
        ),
    }
}

/// A JSON request body of at most 1 MiB.
async fn body(req: Request<Incoming>) -> Result<Value, Reply> {
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        Limited::new(req.into_body(), 1 << 20).collect(),
    )
    .await
    .map_err(|_| {
        error(
            StatusCode::REQUEST_TIMEOUT,
            "the body was not complete within 30 s",
        )
    })?;
    let bytes = read
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })
}

/// A typed body as JSON. These bodies are plain structs of strings and
/// numbers, which always serialize; `null` stands in should one not.
fn to_value(body: impl serde::Serialize) -> Value {
    serde_json::to_value(body).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize an admin API body");
        Value::Null
    })
}

fn status(ctx: &Ctx) -> Reply {
    let mut s = httpd::pipeline_status(&ctx.pipeline, ctx.shutdown.is_cancelled());
    if let Some(o) = s.as_object_mut() {
        o.insert("version".into(), env!("CARGO_PKG_VERSION").into());
        o.insert("uptime_s".into(), ctx.started.elapsed().as_secs().into());
        o.insert("journal".into(), ctx.journal.location().into());
    }
    reply(StatusCode::OK, s)
}

/// `GET /nodes`: the node runs sharing the journal (PostgreSQL), with
/// the plugins the running ones do not agree on; SQLite has none.
fn nodes(ctx: &Ctx) -> Result<Reply, JournalError> {
    let nodes = ctx.journal.nodes()?;
    Ok(reply(
        StatusCode::OK,
        crate::journal::nodes::report(nodes.as_deref()),
    ))
}

/// The metrics as OpenMetrics text, with what is read at each scrape
/// (pending deliveries, the journal's size) brought up to date first.
fn metrics(ctx: &Ctx) -> Reply {
    let m = crate::metrics::metrics();
    let pending = ctx
        .journal
        .pending_counts()
        .inspect_err(|e| tracing::warn!(error = %e, "metrics: pending deliveries not read"))
        .ok();
    let bytes = ctx
        .journal
        .disk_bytes()
        .inspect_err(|e| tracing::warn!(error = %e, "metrics: the journal's size not read"))
        .ok();
    m.scraped(&ctx.pipeline.destination_names(), pending.as_deref(), bytes);
    let mut r = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(m.encode())));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    r
}

/// `GET /alerts`: what fires now, the last events (newest last) and what
/// is configured.
fn alerts(ctx: &Ctx) -> Value {
    let alerts = ctx.pipeline.alerts();
    let configured: Vec<Value> = alerts
        .configured()
        .values()
        .map(|a| {
            serde_json::json!({
                "name": a.name,
                "kind": a.kind.as_str(),
                "notify": a.notify,
            })
        })
        .collect();
    serde_json::json!({
        "active": to_value(alerts.active()),
        "recent": to_value(alerts.history()),
        "alerts": configured,
    })
}

/// The filter of `GET /messages` (and of a bulk action's search) from its
/// parameters.
pub(crate) fn filter(query: &[(String, String)]) -> Result<Filter, String> {
    let mut f = Filter {
        limit: 50,
        ..Filter::default()
    };
    let mut page = 1usize;
    for (k, v) in query {
        let number = || {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{k}: expected a whole number from 1, found {v:?}"))
        };
        match k.as_str() {
            "status" => f.status = Some(v.parse().map_err(|e| format!("status: {e}"))?),
            "source" => f.source = Some(v.clone()),
            "type" => f.message_type = Some(v.clone()),
            "control_id" => f.control_id = Some(v.clone()),
            "route" => f.route = Some(v.clone()),
            "patient" => f.patient = Some(v.clone()),
            "since" => f.since = Some(time::parse(v).map_err(|e| format!("since: {e}"))?),
            "until" => f.until = Some(time::parse(v).map_err(|e| format!("until: {e}"))?),
            "limit" => f.limit = number()?.min(1000),
            "page" => page = number()?,
            other => {
                return Err(format!(
                    "unknown parameter {other:?} (expected status, source, type, control_id, route, \
                     patient, since, until, limit, page)"
                ));
            }
        }
    }
    f.offset = f
        .limit
        .checked_mul(page - 1)
        .filter(|o| i64::try_from(*o).is_ok())
        .ok_or_else(|| format!("page: {page} is past any page there can be"))?;
    Ok(f)
}

fn list(ctx: &Ctx, caller: &Caller, f: &Filter) -> Result<Reply, JournalError> {
    let rows = ctx.journal.list(f)?;
    // A search by patient is answered only once it is on record.
    if f.patient.is_some() {
        let ids = rows.iter().map(|r| r.id.clone()).collect();
        audit_now(ctx, caller, "messages.search-patient", ids, "ok".into())?;
    }
    let page = MessageList {
        more: rows.len() == f.limit,
        messages: rows.iter().map(MessageSummary::from).collect(),
    };
    Ok(reply(StatusCode::OK, to_value(page)))
}

/// Appends an audit entry for what `caller` did; a failure is logged (the
/// action is done and cannot be taken back).
fn audit_after(ctx: &Ctx, caller: &Caller, action: &'static str, ids: Vec<String>, result: String) {
    if let Err(e) = audit_now(ctx, caller, action, ids, result) {
        tracing::error!(action, who = %caller.name, error = %e, "audit entry not written");
    }
}

fn audit_now(
    ctx: &Ctx,
    caller: &Caller,
    action: &'static str,
    messages: Vec<String>,
    result: String,
) -> Result<(), JournalError> {
    ctx.journal
        .audit_append(&Record {
            who: caller.name.clone(),
            via: "api",
            action,
            messages,
            remote: caller.remote.to_string(),
            result,
        })
        .map(|_| ())
}

fn show(
    ctx: &Ctx,
    caller: &Caller,
    id: &str,
    with_body: bool,
    reasons: bool,
) -> Result<Reply, JournalError> {
    let Some(d) = ctx.journal.show(id)? else {
        if with_body {
            audit_after(
                ctx,
                caller,
                "message.body",
                vec![id.into()],
                "not found".into(),
            );
        }
        return Ok(error(StatusCode::NOT_FOUND, "no such message"));
    };
    // Patient data leaves only once its access is on record.
    if with_body {
        audit_now(ctx, caller, "message.body", vec![id.into()], "ok".into())?;
    }
    let view = MessageDetail::new(&d, with_body, reasons);
    Ok(reply(StatusCode::OK, to_value(view)))
}

/// What a bad resend body is told.
const RESEND_BODY: &str = "expected {\"ids\": [message ids]}, {\"dead\": true} or \
    {\"filter\": {search parameters}, \"expect\": count}";

/// What a bad reprocess body is told.
const REPROCESS_BODY: &str =
    "expected {\"ids\": [message ids]} or {\"filter\": {search parameters}, \"expect\": count}";

/// The messages `selection` names, with what selected them for the audit
/// trail; or the answer refusing it: a bad selection (400, `usage` says
/// what is expected), a search by patient without the `phi` role (403), a
/// count that is not the one expected (409, with the count now).
fn chosen(
    ctx: &Ctx,
    caller: &Caller,
    selection: Selection,
    action: &'static str,
    usage: &str,
) -> Result<Result<(Vec<String>, String), Reply>, JournalError> {
    let query: Vec<(String, String)> = match (selection.ids, selection.filter) {
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_IDS {
                return Ok(Err(error(
                    StatusCode::BAD_REQUEST,
                    format!("ids: expected 1 to {MAX_IDS} message ids"),
                )));
            }
            return Ok(Ok((ids, String::new())));
        }
        (None, Some(f)) => f.into_iter().collect(),
        _ => return Ok(Err(error(StatusCode::BAD_REQUEST, usage))),
    };
    match bulk::select(&*ctx.journal, caller, &query, selection.expect)? {
        Selected::Ids(ids, selected) => Ok(Ok((ids, selected))),
        Selected::Bad(reason) => Ok(Err(error(StatusCode::BAD_REQUEST, reason))),
        Selected::NeedsPhi(refused) => {
            audit_after(
                ctx,
                caller,
                action,
                Vec::new(),
                "refused: needs the phi role".into(),
            );
            Ok(Err(refused.reply()))
        }
        Selected::Confirm {
            matched: n,
            expected,
            what,
        } => {
            let message = match expected {
                None => format!(
                    "{n} messages match ({what}); send again with \"expect\": {n} to act on them"
                ),
                Some(e) => format!(
                    "{n} messages match ({what}) now, not the {e} expected; send again with \"expect\": {n}"
                ),
            };
            Ok(Err(reply(
                StatusCode::CONFLICT,
                serde_json::json!({ "error": message, "matched": n, "filter": what }),
            )))
        }
    }
}

fn resend(ctx: &Ctx, caller: &Caller, body: Value) -> Result<Reply, JournalError> {
    let Ok(request) = serde_json::from_value::<ResendRequest>(body) else {
        return Ok(error(StatusCode::BAD_REQUEST, RESEND_BODY));
    };
    let answer = if request.dead {
        if request.select.ids.is_some() || request.select.filter.is_some() {
            return Ok(error(StatusCode::BAD_REQUEST, RESEND_BODY));
        }
        let n = ctx.journal.resend_dead()?;
        audit_after(
            ctx,
            caller,
            "messages.resend-dead",
            Vec::new(),
            format!("queued {n}"),
        );
        ResendReport {
            queued: n,
            without_outputs: None,
        }
    } else {
        let (ids, selected) =
            match chosen(ctx, caller, request.select, "messages.resend", RESEND_BODY)? {
                Ok(c) => c,
                Err(refusal) => return Ok(refusal),
            };
        let resent = ctx.journal.resend(&ids)?;
        let queued = resent.queued;
        audit_after(
            ctx,
            caller,
            "messages.resend",
            ids,
            format!("queued {queued}{selected}"),
        );
        ResendReport {
            queued,
            without_outputs: Some(resent.without_outputs),
        }
    };
    ctx.pipeline.wake_dispatchers();
    Ok(reply(StatusCode::OK, to_value(answer)))
}

fn reprocess(ctx: &Ctx, caller: &Caller, body: Value) -> Result<Reply, JournalError> {
    let Ok(request) = serde_json::from_value::<ReprocessRequest>(body) else {
        return Ok(error(StatusCode::BAD_REQUEST, REPROCESS_BODY));
    };
    let (ids, selected) = match chosen(ctx, caller, request, "messages.reprocess", REPROCESS_BODY)?
    {
        Ok(c) => c,
        Err(refusal) => return Ok(refusal),
    };
    let done = ctx.journal.reprocess(&ids)?;
    audit_after(
        ctx,
        caller,
        "messages.reprocess",
        ids,
        format!("queued {}{selected}", done.queued),
    );
    ctx.pipeline.wake_reprocess();
    let report = ReprocessReport {
        queued: done.queued,
        superseded: done.superseded,
        unknown: done.unknown,
        in_progress: done.in_progress,
        own_events: done.own_events,
    };
    Ok(reply(StatusCode::OK, to_value(report)))
}

/// `POST /journal/key`: the key file the body names (read by this
/// process, which must be able to) becomes the key that seals.
fn rotate_key(ctx: &Ctx, caller: &Caller, body: Value) -> Result<Reply, JournalError> {
    let Some(path) = body.get("path").and_then(Value::as_str) else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "expected {\"path\": \"/etc/weft/journal-2.key\"}",
        ));
    };
    let key = match crate::journal::seal::JournalKey::load(std::path::Path::new(path)) {
        Ok(k) => k,
        Err(e) => return Ok(error(StatusCode::BAD_REQUEST, e.to_string())),
    };
    match ctx.journal.rotate_key(key) {
        Ok(id) => {
            audit_after(
                ctx,
                caller,
                "journal.key-rotate",
                Vec::new(),
                format!("to key {id}"),
            );
            Ok(reply(
                StatusCode::OK,
                serde_json::json!({
                    "key_id": id,
                    "sealing": "from now on with this key; what the journal holds is sealed again in the background",
                }),
            ))
        }
        Err(e) => {
            audit_after(
                ctx,
                caller,
                "journal.key-rotate",
                Vec::new(),
                format!("refused: {e}"),
            );
            Ok(error(StatusCode::CONFLICT, e.to_string()))
        }
    }
}

fn purge(ctx: &Ctx, caller: &Caller, body: Value) -> Result<Reply, JournalError> {
    let Ok(PurgeRequest { before }) = serde_json::from_value(body) else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            "expected {\"before\": \"2026-11-01\"}",
        ));
    };
    let before = match time::parse(&before) {
        Ok(t) => t,
        Err(e) => return Ok(error(StatusCode::BAD_REQUEST, format!("before: {e}"))),
    };
    let purged = ctx.journal.purge(before)?;
    audit_after(
        ctx,
        caller,
        "messages.purge",
        Vec::new(),
        format!(
            "purged {} messages received before {}",
            purged.messages,
            time::iso(before)
        ),
    );
    let report = PurgeReport {
        messages: purged.messages,
        deliveries: purged.deliveries,
        before: time::iso(before),
    };
    Ok(reply(StatusCode::OK, to_value(report)))
}
