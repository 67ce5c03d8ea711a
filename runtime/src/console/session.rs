//! The console's sessions: a token entered once at the login page becomes a
//! random session id in a `Secure; HttpOnly; SameSite=Strict` cookie, and
//! each session has its own CSRF token that every form that changes
//! something must carry. Sessions live in memory (a restart logs everyone
//! out), end after 30 minutes idle or 12 hours in all, and the token behind
//! one is checked again at every request, so revoking it ends the session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderMap;

/// The cookie's name.
pub const COOKIE: &str = "weft_session";

/// A session unused this long ends.
pub const IDLE: Duration = Duration::from_secs(30 * 60);

/// A session ends this long after its login, used or not.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Sessions at most; a login past this ends the oldest.
pub const MAX_SESSIONS: usize = 1000;

/// One logged-in browser.
#[derive(Clone)]
pub struct Session {
    /// The token it logged in with (checked again at each request; never
    /// shown or logged).
    pub token: String,
    /// The CSRF token its forms carry.
    pub csrf: String,
    started: Instant,
    seen: Instant,
}

/// Every session, by id.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes, as hex; `None` if the system has no randomness to give.
fn random_hex() -> Option<String> {
    let mut bytes = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .ok()?;
    Some(crate::plugins::engine::hex(&bytes))
}

/// Whether two strings are equal, in time that does not depend on where they
/// differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    /// Starts a session for `token`: its id, or `None` without randomness.
    pub fn start(&self, token: &str) -> Option<String> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let now = Instant::now();
        let mut by_id = self
            .by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        by_id.retain(|_, s| live(s, now));
        if by_id.len() >= MAX_SESSIONS
            && let Some(oldest) = by_id
                .iter()
                .min_by_key(|(_, s)| s.started)
                .map(|(k, _)| k.clone())
        {
            by_id.remove(&oldest);
        }
        by_id.insert(
            id.clone(),
            Session {
                token: token.to_string(),
                csrf,
                started: now,
                seen: now,
            },
        );
        Some(id)
    }

    /// The live session whose id the request's cookie holds (its idle clock
    /// restarted).
    pub fn find(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = cookie(headers)?;
        let now = Instant::now();
        let mut by_id = self
            .by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = by_id.get_mut(&id)?;
        if !live(found, now) {
            by_id.remove(&id);
            return None;
        }
        found.seen = now;
        Some((id, found.clone()))
    }

    /// Ends a session.
    pub fn end(&self, id: &str) {
        self.by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.seen) < IDLE && now.duration_since(s.started) < LIFETIME
}

/// The session id in the request's `Cookie` header.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value that keeps session `id` (for the console's paths
/// only).
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/console; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that removes it.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/console; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_only() {
        let s = Sessions::default();
        let id = s.start("weft_tok").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            format!("other=1; {COOKIE}={id}").parse().unwrap(),
        );
        let (found, session) = s.find(&h).unwrap();
        assert_eq!(found, id);
        assert_eq!(session.token, "weft_tok");
        assert_eq!(session.csrf.len(), 64);
        assert_ne!(session.csrf, id);
        // A forged or truncated id finds nothing.
        h.insert(
            http::header::COOKIE,
            format!("{COOKIE}={}", &id[..63]).parse().unwrap(),
        );
        assert!(s.find(&h).is_none());
        h.insert(
            http::header::COOKIE,
            format!("{COOKIE}={}", "0".repeat(64)).parse().unwrap(),
        );
        assert!(s.find(&h).is_none());
        s.end(&id);
        h.insert(
            http::header::COOKIE,
            format!("{COOKIE}={id}").parse().unwrap(),
        );
        assert!(s.find(&h).is_none(), "ended");
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }

    #[test]
    fn sessions_are_capped() {
        let s = Sessions::default();
        for _ in 0..MAX_SESSIONS + 5 {
            s.start("t").unwrap();
        }
        assert_eq!(s.by_id.lock().unwrap().len(), MAX_SESSIONS);
    }
}
