//! The web console, served by the admin listener under `/console`: what
//! an on-call analyst needs in a browser (overview, message search and
//! view, resend and reprocess, plugins), rendered on the server as plain
//! HTML (no script; everything embedded in the binary, nothing fetched
//! from elsewhere).
//!
//! The door is the admin API's (`Host`, `Origin`, `Sec-Fetch-Site`, the
//! failed-login lockout, the same tokens and roles), with a session
//! cookie instead of a bearer header ([`session`]): a token is entered once
//! at `/console/login`. Every form that changes something carries the
//! session's CSRF token; one without it is refused (403). Pages answer with
//! a strict Content-Security-Policy and are never cached. What a role sees
//! and does is the API's: `read` sees no patient data and no reasons,
//! `phi` sees message bodies (each view audited) and may search by
//! patient, `operate` may resend and reprocess.

pub mod hl7_names;
mod message;
mod messages;
mod overview;
mod plugins;
pub mod session;
mod view;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::admin::guard::{Caller, Guard};
use crate::admin::tokens::Role;
use crate::httpd::Reply;
use crate::journal::audit::Record;
use crate::journal::{Journal, JournalError};
use crate::pipeline::Pipeline;
use crate::reload::Reloader;
use session::Sessions;

/// The largest form body read.
const MAX_FORM: usize = 64 * 1024;

/// The console's state: what its pages read, and its sessions.
pub struct Console {
    guard: Arc<Guard>,
    pipeline: Arc<Pipeline>,
    reloader: Option<Arc<Reloader>>,
    sessions: Sessions,
}

/// Who is looking, and the form token of their session.
pub(crate) struct Viewer {
    /// The token's name and role, and the peer.
    pub caller: Caller,
    /// The session's CSRF token, for forms.
    pub csrf: String,
}

impl Viewer {
    /// Whether the viewer's role is at least `role`.
    pub fn may(&self, role: Role) -> bool {
        self.caller.role >= role
    }
}

/// A request's form fields (a POST body, or a GET's query).
pub(crate) type Form = Vec<(String, String)>;

impl Console {
    /// The console of an admin listener with these checks.
    pub fn new(
        guard: Arc<Guard>,
        pipeline: Arc<Pipeline>,
        reloader: Option<Arc<Reloader>>,
    ) -> Console {
        Console {
            guard,
            pipeline,
            reloader,
            sessions: Sessions::default(),
        }
    }

    fn journal(&self) -> &Arc<dyn Journal> {
        self.pipeline.journal()
    }

    /// Answers a request for `/console` or below.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        remote: SocketAddr,
        local: Option<SocketAddr>,
    ) -> Reply {
        if let Err(refused) = self.guard.check_origin(req.headers(), remote, local) {
            crate::metrics::metrics().admin_refused(refused.kind);
            return view::problem(refused.status, &refused.reason);
        }
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query: Form = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        match (&method, path.as_str()) {
            (&Method::GET, "/console/style.css") => return view::stylesheet(),
            (&Method::GET, "/console/login") => return view::login(None, StatusCode::OK),
            (&Method::POST, "/console/login") => {
                let form = match read_form(req).await {
                    Ok(f) => f,
                    Err(r) => return r,
                };
                return self.login(&form, remote).await;
            }
            _ => {}
        }
        let Some((id, session)) = self.sessions.find(req.headers()) else {
            return if method == Method::GET {
                view::redirect("/console/login")
            } else {
                view::login(Some("Log in first."), StatusCode::UNAUTHORIZED)
            };
        };
        // The token behind the session, checked again: a revoked token
        // ends its sessions at their next request.
        let caller = match self.guard.authenticate(&session.token, remote) {
            Ok(c) => c,
            Err(_) => {
                self.sessions.end(&id);
                return view::login(
                    Some("The token of this session is no longer valid."),
                    StatusCode::UNAUTHORIZED,
                );
            }
        };
        let viewer = Viewer {
            caller,
            csrf: session.csrf.clone(),
        };
        if method == Method::POST {
            let form = match read_form(req).await {
                Ok(f) => f,
                Err(r) => return r,
            };
            let token = field(&form, "csrf").unwrap_or_default();
            if !session::same(token, &session.csrf) {
                crate::metrics::metrics().admin_refused("csrf");
                return view::problem(
                    StatusCode::FORBIDDEN,
                    "this form did not carry the session's CSRF token; reload the page and try again",
                );
            }
            return self.post(&path, &form, &viewer, &id).await;
        }
        if method != Method::GET {
            return view::problem(StatusCode::METHOD_NOT_ALLOWED, "GET or POST only");
        }
        let me = self.clone();
        let answer = tokio::task::spawn_blocking(move || me.get(&path, &query, &viewer)).await;
        unwrap_blocking(answer)
    }

    /// A login: the token entered becomes a session.
    async fn login(self: &Arc<Self>, form: &Form, remote: SocketAddr) -> Reply {
        let token = field(form, "token").unwrap_or_default().trim().to_string();
        let caller = match self.guard.authenticate(&token, remote) {
            Ok(c) => c,
            Err(refused) => {
                crate::metrics::metrics().admin_refused(refused.kind);
                return view::login(
                    Some("That token is not valid (unknown or revoked)."),
                    StatusCode::UNAUTHORIZED,
                );
            }
        };
        let Some(id) = self.sessions.start(&token) else {
            return view::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the system's random source failed; no session was started",
            );
        };
        self.audit_later(caller, "console.login", "ok".into()).await;
        let mut r = view::redirect("/console");
        if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id)) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        r
    }

    /// A page.
    fn get(&self, path: &str, query: &Form, viewer: &Viewer) -> Reply {
        let page = match path {
            "/console" | "/console/" => overview::page(self, viewer),
            "/console/messages" => messages::page(self, viewer, query),
            "/console/plugins" => plugins::page(self, viewer),
            p if p.starts_with("/console/messages/") => {
                message::page(self, viewer, &p["/console/messages/".len()..], query)
            }
            _ => return view::problem(StatusCode::NOT_FOUND, "no such page"),
        };
        page.unwrap_or_else(|e| view::problem(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()))
    }

    /// A form that changes something (its CSRF token already checked).
    async fn post(
        self: Arc<Self>,
        path: &str,
        form: &Form,
        viewer: &Viewer,
        session: &str,
    ) -> Reply {
        if path == "/console/logout" {
            self.sessions.end(session);
            let mut r = view::redirect("/console/login");
            if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            return r;
        }
        if !viewer.may(Role::Operate) {
            let reprocess = path.ends_with("/reprocess")
                || field(form, "action").is_some_and(|a| a == "reprocess");
            self.audit_later(
                viewer.caller.clone(),
                if reprocess {
                    "messages.reprocess"
                } else {
                    "messages.resend"
                },
                "refused: needs the operate role".into(),
            )
            .await;
            return view::problem(
                StatusCode::FORBIDDEN,
                &format!(
                    "resending and reprocessing need the operate role; token {} has the {} role",
                    viewer.caller.name,
                    viewer.caller.role.as_str()
                ),
            );
        }
        let (me, path, form) = (self.clone(), path.to_string(), form.clone());
        let caller = viewer.caller.clone();
        let csrf = viewer.csrf.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let viewer = Viewer { caller, csrf };
            match path.strip_prefix("/console/messages/") {
                Some(rest) => message::act(&me, &viewer, rest),
                None if path == "/console/bulk" => messages::bulk(&me, &viewer, &form),
                None => Ok(view::problem(StatusCode::NOT_FOUND, "no such action")),
            }
            .unwrap_or_else(|e| view::problem(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()))
        })
        .await;
        unwrap_blocking(answer)
    }

    /// [`Console::audit`] off the async threads (the journal's writes
    /// block), naming no message.
    async fn audit_later(self: &Arc<Self>, caller: Caller, action: &'static str, result: String) {
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || me.audit(&caller, action, Vec::new(), result))
            .await;
    }

    /// Appends an audit entry for what `caller` did in the console; a
    /// failure is logged.
    fn audit(&self, caller: &Caller, action: &'static str, messages: Vec<String>, result: String) {
        if let Err(e) = self.audit_now(caller, action, messages, result) {
            tracing::error!(action, who = %caller.name, error = %e, "audit entry not written");
        }
    }

    fn audit_now(
        &self,
        caller: &Caller,
        action: &'static str,
        messages: Vec<String>,
        result: String,
    ) -> Result<(), JournalError> {
        self.journal()
            .audit_append(&Record {
                who: caller.name.clone(),
                via: "console",
                action,
                messages,
                remote: caller.remote.to_string(),
                result,
            })
            .map(|_| ())
    }
}

fn unwrap_blocking(answer: Result<Reply, tokio::task::JoinError>) -> Reply {
    answer.unwrap_or_else(|_| {
        view::problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request's task failed",
        )
    })
}

/// The first value of `name` in a form.
pub(crate) fn field<'f>(form: &'f Form, name: &str) -> Option<&'f str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A form body (`application/x-www-form-urlencoded`, at most [`MAX_FORM`]
/// bytes, whole within 30 s).
async fn read_form(req: Request<Incoming>) -> Result<Form, Reply> {
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        Limited::new(req.into_body(), MAX_FORM).collect(),
    )
    .await
    .map_err(|_| {
        view::problem(
            StatusCode::REQUEST_TIMEOUT,
            "the form was not sent within 30 s",
        )
    })?;
    let bytes: Bytes = read
        .map_err(|_| view::problem(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large"))?
        .to_bytes();
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

/// An HTML answer with the console's headers.
pub(crate) fn html(status: StatusCode, body: String) -> Reply {
    let mut r = http::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    view::secure_headers(h);
    r
}
