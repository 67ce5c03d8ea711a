//! The admin API's door: every request must name this server in `Host`
//! (no DNS rebinding), come from no foreign page (`Origin`,
//! `Sec-Fetch-Site`), send JSON when it writes (no form posts without a
//! preflight), and carry a bearer token whose role allows what it asks.
//! Failed authentications are rate-limited per peer address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode, header};

use super::tokens::{Role, TokenStore};
use crate::httpd::{Reply, error};

/// Why a request is refused: its status, the reason in the JSON answer,
/// and the headers that go with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The HTTP status.
    pub status: StatusCode,
    /// The reason, for `{"error": …}`.
    pub reason: String,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
    /// Why, one word (the `reason` label of `weft_admin_refusals_total`).
    pub kind: &'static str,
}

impl Refused {
    fn new(status: StatusCode, kind: &'static str, reason: impl Into<String>) -> Refused {
        Refused {
            status,
            reason: reason.into(),
            retry_after: None,
            kind,
        }
    }

    /// The answer to send.
    pub fn reply(&self) -> Reply {
        let mut r = error(self.status, self.reason.clone());
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"weft\""),
            );
        }
        if let Some(s) = self.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, s.into());
        }
        r
    }
}

/// Who is calling: the token's name and role, and from where.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The peer's address.
    pub remote: SocketAddr,
}

impl Caller {
    /// `Err(403)` unless the caller's role is at least `role`; `what` says
    /// what was asked.
    pub fn needs(&self, role: Role, what: &str) -> Result<(), Refused> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Refused::new(
                StatusCode::FORBIDDEN,
                "role",
                format!(
                    "{what} needs the {} role; token {} has the {} role",
                    role.as_str(),
                    self.name,
                    self.role.as_str()
                ),
            ))
        }
    }
}

/// Failed authentications a peer address may make in [`FAILURE_WINDOW`]
/// before its requests are refused with 429 for the rest of the window.
pub const FAILURE_ALLOWANCE: u32 = 10;

/// The window failed authentications are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Peer addresses whose failures are tracked; past this, new addresses
/// share one count (a flood of addresses cannot grow the map).
const TRACKED_PEERS: usize = 4096;

/// The admin API's checks, in the order a request meets them.
pub struct Guard {
    tokens: TokenStore,
    /// Host names (lowercase, IPv6 in brackets) the API answers to.
    hosts: Vec<String>,
    port: u16,
    https: bool,
    failures: Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>,
}

impl Guard {
    /// A guard for an API listening on `listen` (over TLS when `https`),
    /// answering to `hosts` besides loopback names and the address a
    /// connection came in on, with the tokens of `tokens`.
    pub fn new(tokens: TokenStore, listen: SocketAddr, https: bool, hosts: &[String]) -> Guard {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .into_iter()
            .map(String::from)
            .collect();
        if !listen.ip().is_unspecified() {
            names.push(ip_name(listen.ip()));
        }
        names.extend(hosts.iter().map(|h| h.to_ascii_lowercase()));
        Guard {
            tokens,
            hosts: names,
            port: listen.port(),
            https,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The token store.
    pub fn tokens(&self) -> &TokenStore {
        &self.tokens
    }

    /// Checks a request that came from `remote` to `local`: the caller, or
    /// the refusal to send.
    pub fn check(
        &self,
        method: &Method,
        headers: &HeaderMap,
        remote: SocketAddr,
        local: Option<SocketAddr>,
    ) -> Result<Caller, Refused> {
        self.check_origin(headers, remote, local)?;
        let Some(auth) = headers.get(header::AUTHORIZATION) else {
            return Err(Refused::new(
                StatusCode::UNAUTHORIZED,
                "no_token",
                "no token: send Authorization: Bearer <token> (see `weft admin token`)",
            ));
        };
        let presented = auth
            .to_str()
            .ok()
            .and_then(|a| {
                a.strip_prefix("Bearer ")
                    .or_else(|| a.strip_prefix("bearer "))
            })
            .map(str::trim)
            .unwrap_or_default();
        let caller = self.authenticate(presented, remote)?;
        if writes(method) {
            let json = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Err(Refused::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "content_type",
                    "a request that changes something must send Content-Type: application/json",
                ));
            }
        }
        Ok(caller)
    }

    /// The checks made before any credential is looked at: `Host` names
    /// this server, no foreign page sent it (`Origin`, `Sec-Fetch-Site`),
    /// and `remote` has not failed too often lately.
    pub fn check_origin(
        &self,
        headers: &HeaderMap,
        remote: SocketAddr,
        local: Option<SocketAddr>,
    ) -> Result<(), Refused> {
        let local_name = local.map(|l| ip_name(l.ip()));
        let known = |authority: &str| self.known_authority(authority, local_name.as_deref());
        match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
            Some(host) if known(host) => {}
            Some(_) => {
                return Err(Refused::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    "bad_host",
                    "the Host header does not name this server (add the name to admin.hosts)",
                ));
            }
            None => {
                return Err(Refused::new(
                    StatusCode::BAD_REQUEST,
                    "no_host",
                    "no Host header",
                ));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let same = origin
                .to_str()
                .ok()
                .and_then(|o| o.strip_prefix(if self.https { "https://" } else { "http://" }))
                .is_some_and(known);
            if !same {
                return Err(Refused::new(
                    StatusCode::FORBIDDEN,
                    "cross_origin",
                    "a request from another origin (a web page) is refused",
                ));
            }
        }
        if headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site")
        {
            return Err(Refused::new(
                StatusCode::FORBIDDEN,
                "cross_site",
                "a cross-site request (a web page) is refused",
            ));
        }
        if let Some(wait) = self.blocked(remote.ip()) {
            let secs = wait.as_secs().max(1);
            return Err(Refused {
                retry_after: Some(secs),
                ..Refused::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "locked_out",
                    format!(
                        "too many failed authentications from this address; try again in {secs} s"
                    ),
                )
            });
        }
        Ok(())
    }

    /// The token `presented` from `remote`: who it is, or 401 (counted
    /// against `remote`'s allowance).
    pub fn authenticate(&self, presented: &str, remote: SocketAddr) -> Result<Caller, Refused> {
        let tokens = self.tokens.current();
        let Some((name, role)) = Some(presented)
            .filter(|t| !t.is_empty())
            .and_then(|t| tokens.find(t))
        else {
            self.failed(remote);
            return Err(Refused::new(
                StatusCode::UNAUTHORIZED,
                "bad_token",
                "the token is not valid (unknown or revoked)",
            ));
        };
        Ok(Caller {
            name: name.to_string(),
            role,
            remote,
        })
    }

    /// Whether the request was made over HTTPS.
    pub fn https(&self) -> bool {
        self.https
    }

    /// Whether `authority` (`host[:port]`) names this server.
    fn known_authority(&self, authority: &str, local: Option<&str>) -> bool {
        let authority = authority.trim().to_ascii_lowercase();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h.to_string(), p.parse::<u16>().ok()),
            _ => (authority.clone(), Some(if self.https { 443 } else { 80 })),
        };
        port == Some(self.port) && (self.hosts.contains(&host) || local.is_some_and(|l| l == host))
    }

    /// How long `ip` must still wait, if it failed too often.
    fn blocked(&self, ip: IpAddr) -> Option<Duration> {
        let failures = self.failures.lock().ok()?;
        let key = if failures.contains_key(&Some(ip)) {
            Some(ip)
        } else if failures.len() >= TRACKED_PEERS {
            None
        } else {
            return None;
        };
        let (since, count) = failures.get(&key).copied()?;
        let elapsed = since.elapsed();
        (count >= FAILURE_ALLOWANCE && elapsed < FAILURE_WINDOW).then(|| FAILURE_WINDOW - elapsed)
    }

    /// Counts a failed authentication from `remote`.
    fn failed(&self, remote: SocketAddr) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        let now = Instant::now();
        if failures.len() >= TRACKED_PEERS {
            failures.retain(|_, (since, _)| now.duration_since(*since) < FAILURE_WINDOW);
        }
        let key = if failures.len() < TRACKED_PEERS || failures.contains_key(&Some(remote.ip())) {
            Some(remote.ip())
        } else {
            None
        };
        let entry = failures.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= FAILURE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 == FAILURE_ALLOWANCE {
            tracing::warn!(%remote, "admin API: {FAILURE_ALLOWANCE} failed authentications in a minute; this address is refused for the rest of it");
        }
    }
}

/// `ip` as it appears in a Host header.
fn ip_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn writes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::tokens::TokenFile;

    fn guard(dir: &std::path::Path) -> (Guard, String, String) {
        let path = dir.join("tokens.toml");
        let mut f = TokenFile::default();
        let op = f.add("op", Role::Operate).unwrap();
        let reader = f.add("reader", Role::Read).unwrap();
        f.save(&path).unwrap();
        let g = Guard::new(
            TokenStore::open(&path).unwrap(),
            "127.0.0.1:8081".parse().unwrap(),
            false,
            &["weft.example".into()],
        );
        (g, op, reader)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn each_check_refuses_with_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let (g, op, reader) = guard(dir.path());
        let remote: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let bearer = format!("Bearer {op}");
        let code = |m: Method, h: &[(&str, &str)]| match g.check(&m, &headers(h), remote, None) {
            Ok(c) => c.name,
            Err(r) => r.status.as_u16().to_string(),
        };
        let host = ("host", "127.0.0.1:8081");
        let auth = ("authorization", bearer.as_str());
        assert_eq!(code(Method::GET, &[host, auth]), "op");
        assert_eq!(code(Method::GET, &[("host", "localhost:8081"), auth]), "op");
        assert_eq!(
            code(Method::GET, &[("host", "WEFT.example:8081"), auth]),
            "op"
        );
        assert_eq!(
            code(Method::GET, &[("host", "evil.example:8081"), auth]),
            "421"
        );
        assert_eq!(
            code(Method::GET, &[("host", "127.0.0.1:9999"), auth]),
            "421"
        );
        assert_eq!(code(Method::GET, &[("host", "127.0.0.1"), auth]), "421");
        assert_eq!(code(Method::GET, &[auth]), "400");
        assert_eq!(
            code(
                Method::GET,
                &[host, auth, ("origin", "http://evil.example")]
            ),
            "403"
        );
        assert_eq!(
            code(
                Method::GET,
                &[host, auth, ("origin", "http://127.0.0.1:8081")]
            ),
            "op"
        );
        assert_eq!(
            code(Method::GET, &[host, auth, ("sec-fetch-site", "cross-site")]),
            "403"
        );
        assert_eq!(code(Method::GET, &[host]), "401");
        assert_eq!(code(Method::POST, &[host, auth]), "415");
        assert_eq!(
            code(Method::POST, &[host, auth, ("content-type", "text/plain")]),
            "415"
        );
        assert_eq!(
            code(
                Method::POST,
                &[
                    host,
                    auth,
                    ("content-type", "application/json; charset=utf-8")
                ]
            ),
            "op"
        );
        let c = g
            .check(
                &Method::GET,
                &headers(&[host, ("authorization", &format!("Bearer {reader}"))]),
                remote,
                None,
            )
            .unwrap();
        assert_eq!(c.needs(Role::Phi, "a body").unwrap_err().status, 403);
        assert!(c.needs(Role::Read, "a list").is_ok());
    }

    #[test]
    fn guessing_is_refused_after_the_allowance() {
        let dir = tempfile::tempdir().unwrap();
        let (g, op, _) = guard(dir.path());
        let remote: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let other: SocketAddr = "127.0.0.2:40000".parse().unwrap();
        let try_with = |token: &str, from| {
            g.check(
                &Method::GET,
                &headers(&[
                    ("host", "127.0.0.1:8081"),
                    ("authorization", &format!("Bearer {token}")),
                ]),
                from,
                None,
            )
            .map(|c| c.name)
            .map_err(|r| r.status.as_u16())
        };
        for _ in 0..FAILURE_ALLOWANCE {
            assert_eq!(try_with("weft_guess", remote), Err(401));
        }
        assert_eq!(
            try_with(&op, remote),
            Err(429),
            "even the right token waits"
        );
        assert_eq!(try_with(&op, other), Ok("op".into()), "other peers are not");
    }
}
