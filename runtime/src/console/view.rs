//! The console's frame: the layout every page shares, the login page, the
//! answers for problems and redirects, the stylesheet and the headers that
//! lock pages down, and the small pieces pages share (times, counts, the
//! throughput chart).

use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{Viewer, html};
use crate::httpd::Reply;

/// The stylesheet (embedded: an edge server fetches nothing).
const STYLE: &str = include_str!("style.css");

/// Headers every console answer carries: no script or style from
/// anywhere but here, no framing, no referrer, no caching, no sniffing.
pub fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // same-origin, not no-referrer: under no-referrer a browser sends
    // `Origin: null` with the console's own form posts, which the origin
    // check refuses.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// The stylesheet.
pub fn stylesheet() -> Reply {
    let mut r = html(StatusCode::OK, STYLE.to_string());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    r
}

/// A 303 to `to`.
pub fn redirect(to: &str) -> Reply {
    let mut r = html(StatusCode::SEE_OTHER, String::new());
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn head(title: &str) -> Markup {
    html! {
        (DOCTYPE)
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Weft" }
            link rel="stylesheet" href="/console/style.css";
        }
    }
}

/// A page in the frame: the navigation, who is logged in, `body`.
pub fn page(viewer: &Viewer, title: &str, current: &str, body: Markup) -> Reply {
    let nav = [
        ("/console", "Overview"),
        ("/console/messages", "Messages"),
        ("/console/plugins", "Plugins"),
    ];
    let markup = html! {
        (head(title))
        body {
            header {
                span.brand { "Weft" }
                nav {
                    @for (href, label) in nav {
                        @if href == current {
                            a.current href=(href) { (label) }
                        } @else {
                            a href=(href) { (label) }
                        }
                    }
                }
                span.who {
                    (viewer.caller.name) " · " (viewer.caller.role.as_str())
                    form.inline method="post" action="/console/logout" {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        button type="submit" { "Log out" }
                    }
                }
            }
            main { h1 { (title) } (body) }
        }
    };
    html(StatusCode::OK, markup.into_string())
}

/// The login page, with a problem to show.
pub fn login(problem: Option<&str>, status: StatusCode) -> Reply {
    let markup = html! {
        (head("Log in"))
        body.login {
            main {
                h1 { "Weft" }
                @if let Some(p) = problem { p.problem { (p) } }
                form method="post" action="/console/login" {
                    label for="token" { "Admin token" }
                    input id="token" type="password" name="token" autocomplete="off" required autofocus;
                    button type="submit" { "Log in" }
                }
                p.hint { "A token from " code { "weft admin token add NAME --role read|phi|operate" } "." }
            }
        }
    };
    html(status, markup.into_string())
}

/// A problem page.
pub fn problem(status: StatusCode, reason: &str) -> Reply {
    let markup = html! {
        (head("Problem"))
        body.login {
            main {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or_default()) }
                p.problem { (reason) }
                p { a href="/console" { "Back to the console" } }
            }
        }
    };
    html(status, markup.into_string())
}

/// A count, or `N+` when it reached the cap it was counted to.
pub fn count(n: u64, cap: u64) -> String {
    if n >= cap {
        format!("{n}+")
    } else {
        n.to_string()
    }
}

/// How long ago `ms` was, in words, from `now`.
pub fn ago(ms: i64, now: i64) -> String {
    let s = ((now - ms) / 1000).max(0);
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h {} min ago", s / 3600, s % 3600 / 60),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// A bar chart of per-minute counts (oldest first), as inline SVG: two
/// series side by side in each minute.
pub fn chart(series: &[(&str, &str, Vec<u64>)]) -> Markup {
    let minutes = series.first().map_or(0, |s| s.2.len()).max(1);
    let top = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let (w, h) = (720.0_f64, 140.0_f64);
    let slot = w / minutes as f64;
    let bar = slot / series.len().max(1) as f64;
    let mut bars = String::new();
    for (k, (_, class, values)) in series.iter().enumerate() {
        for (i, v) in values.iter().enumerate() {
            if *v == 0 {
                continue;
            }
            let bh = (*v as f64 / top as f64) * (h - 20.0);
            bars.push_str(&format!(
                "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{v}</title></rect>",
                i as f64 * slot + k as f64 * bar,
                h - bh,
                (bar - 0.5).max(0.5),
                bh
            ));
        }
    }
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {w} {h}")) preserveAspectRatio="none" role="img" aria-label="messages per minute, the last hour" {
                (PreEscaped(bars))
            }
            figcaption {
                span.muted { "60 minutes, the current one on the right; the tallest bar is " (top) " a minute. " }
                @for (label, class, values) in series {
                    span class=(format!("key {class}")) { (label) ": " (values.iter().sum::<u64>()) " in the last hour" }
                    " "
                }
            }
        }
    }
}
