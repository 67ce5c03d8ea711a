//! One message: where it came from, what the plugins made of it (every run),
//! each delivery with its attempts; its content on request (`phi`, audited),
//! HL7 v2 segment by segment with each field's position and name, escapes
//! decoded, and FHIR JSON pretty-printed, one fold per resource. Resend
//! and reprocess for `operate`.

use http::StatusCode;
use maud::{Markup, html};
use weft_hl7::{Element, Level};

use super::hl7_names::field_name;
use super::view::{self, problem};
use super::{Console, Form, Viewer, field};
use crate::admin::tokens::Role;
use crate::httpd::Reply;
use crate::journal::time::iso;
use crate::journal::{DeliveryState, JournalError};

/// A body larger than this is shown as text, not parsed for display.
const MAX_RENDERED: usize = 2 << 20;

/// The text of an element, its escapes decoded and its separators shown.
fn element(e: Element<'_>, d: &weft_hl7::Delimiters) -> Markup {
    if !has_inner(e, d) {
        return html! { (weft_hl7::escape::decode(e.raw(), d)) };
    }
    let sep = match e.level() {
        Level::Field => d.repetition,
        Level::Repetition => d.component,
        _ => d.subcomponent,
    };
    html! {
        @for (i, part) in e.parts().enumerate() {
            @if i > 0 { span.sep { (sep) } }
            (element(part, d))
        }
    }
}

/// Whether `e` holds a separator of a level below it.
fn has_inner(e: Element<'_>, d: &weft_hl7::Delimiters) -> bool {
    let seps: &[char] = match e.level() {
        Level::Field => &[d.repetition, d.component, d.subcomponent],
        Level::Repetition => &[d.component, d.subcomponent],
        Level::Component => &[d.subcomponent],
        Level::Subcomponent => &[],
    };
    e.raw().contains(seps)
}

/// An HL7 v2 message, segment by segment, a row per field that holds
/// something.
fn hl7(body: &[u8]) -> Option<Markup> {
    let msg = weft_hl7::Message::parse(body).ok()?;
    let d = msg.delimiters();
    Some(html! {
        table.hl7 {
            @for seg in msg.segments() {
                tr.seg { td.pos { (seg.id()) } td colspan="2" { (field_name_hint(seg.id())) } }
                @for n in 1..=seg.field_count() {
                    @let f = seg.field(n, d);
                    @if !f.is_empty() {
                        tr {
                            td.pos { (seg.id()) "-" (n) }
                            td.name { (field_name(seg.id(), n).unwrap_or("")) }
                            td.mono {
                                // MSH-1 and MSH-2 are the delimiters themselves.
                                @if seg.id() == "MSH" && n <= 2 { (f.raw()) } @else { (element(f, d)) }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn field_name_hint(id: &str) -> &'static str {
    if field_name(id, 1).is_some() {
        ""
    } else {
        "(fields of this segment are shown by position)"
    }
}

/// FHIR JSON, pretty-printed: a Bundle folded by entry (resource type and
/// id), anything else whole.
fn fhir(body: &[u8]) -> Option<Markup> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let entries = v
        .get("entry")
        .and_then(|e| e.as_array())
        .filter(|_| v.get("resourceType").and_then(|t| t.as_str()) == Some("Bundle"));
    Some(match entries {
        Some(entries) => html! {
            p.muted { "Bundle (" (v.get("type").and_then(|t| t.as_str()).unwrap_or("")) "), " (entries.len()) " entries" }
            @for e in entries {
                @let r = e.get("resource").unwrap_or(e);
                details {
                    summary {
                        (r.get("resourceType").and_then(|t| t.as_str()).unwrap_or("entry"))
                        @if let Some(id) = r.get("id").and_then(|t| t.as_str()) { "/" (id) }
                    }
                    pre { (pretty(e)) }
                }
            }
        },
        None => html! { pre { (pretty(&v)) } },
    })
}

/// A body as the console shows it: HL7 v2 as a field table, JSON
/// pretty-printed, anything else as text.
fn body(content_type: &str, bytes: &[u8]) -> Markup {
    let rendered = if bytes.len() > MAX_RENDERED {
        None
    } else if bytes.starts_with(b"MSH") {
        hl7(bytes)
    } else if content_type.contains("json") {
        fhir(bytes)
    } else {
        None
    };
    rendered.unwrap_or_else(|| html! { pre { (String::from_utf8_lossy(bytes)) } })
}

pub(super) fn page(
    console: &Console,
    viewer: &Viewer,
    id: &str,
    query: &Form,
) -> Result<Reply, JournalError> {
    let want_body = field(query, "body").is_some_and(|b| b == "1");
    if want_body && !viewer.may(Role::Phi) {
        console.audit(
            &viewer.caller,
            "message.body",
            vec![id.to_string()],
            "refused: needs the phi role".into(),
        );
        return Ok(problem(
            StatusCode::FORBIDDEN,
            "a message's content needs the phi role",
        ));
    }
    let Some(d) = console.journal().show(id)? else {
        return Ok(problem(StatusCode::NOT_FOUND, "no such message"));
    };
    if want_body {
        // Patient data is shown only once its access is on record.
        console.audit_now(
            &viewer.caller,
            "message.body",
            vec![id.to_string()],
            "ok".into(),
        )?;
    }
    let reasons = viewer.may(Role::Phi);
    let s = &d.summary;
    let notice = match field(query, "done") {
        Some("resend") => Some("Its deliveries are queued again."),
        Some("reprocess") => {
            Some("It is queued to run through the plugins again; reload this page in a moment.")
        }
        _ => None,
    };
    let content = html! {
        @if let Some(n) = notice { p.notice { (n) } }
        table.facts {
            tr { th { "Id" } td.mono { (s.id) } }
            tr { th { "Received" } td { (iso(s.received_at)) " UTC from source " (s.source)
                 @if let Some(r) = &d.remote { " (" (r) ")" } } }
            @if let Some(subject) = &d.peer_subject { tr { th { "Certificate" } td { (subject) } } }
            tr { th { "Type" } td { (s.message_type) } }
            tr { th { "Control id" } td.mono { (s.control_id) } }
            tr { th { "Sender" } td { (d.sender.0) " / " (d.sender.1) } }
            tr { th { "Route" } td { (d.route) } }
            tr { th { "Status" } td id="status" {
                span class=(if matches!(s.status.as_str(), "rejected" | "failed") { "bad" } else { "" }) { (s.status.as_str()) }
                @if d.run > 1 { " (run " (d.run) ")" } } }
            @if let Some(e) = &d.error {
                tr { th { "Reason" } td { @if reasons { (e) } @else { span.muted { "(shown to the phi role)" } } } }
            }
            @for p in &d.plugins {
                tr { th { "Plugin" } td { span.mono { (p.plugin) "@" (p.sha256) }
                    @if let Some(v) = &p.declared_version { " version " (v) }
                    " · " (p.signature()) } }
            }
        }
        @if viewer.may(Role::Operate) {
            div.actions {
                form method="post" action=(format!("/console/messages/{}/resend", s.id)) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    button id="resend" type="submit" { "Resend its outputs" }
                }
                form method="post" action=(format!("/console/messages/{}/reprocess", s.id)) {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    button id="reprocess" type="submit" { "Reprocess through the live plugins" }
                }
            }
        }
        @if !d.earlier.is_empty() {
            h2 { "Earlier runs" }
            table {
                tr { th { "Run" } th { "Outcome" } th { "Reason" } th { "Plugins" } th { "Replaced" } }
                @for e in &d.earlier {
                    tr {
                        td.n { (e.run) } td { (e.status.as_str()) }
                        td { @match (&e.error, reasons) { (Some(r), true) => (r), (Some(_), false) => span.muted { "(phi role)" }, _ => "" } }
                        td.mono { @for p in &e.plugins { (p.plugin) "@" (p.sha256.chars().take(12).collect::<String>()) " " } }
                        td { (iso(e.replaced_at)) }
                    }
                }
            }
        }
        h2 { "Deliveries" }
        @if d.deliveries.is_empty() {
            p.muted { "None." }
        } @else {
            table id="deliveries" {
                tr { th { "#" } th { "Run" } th { "Destination" } th { "Output" } th { "State" } th.n { "Attempts" } th { "Last error" } th { "When" } }
                @for x in &d.deliveries {
                    tr class=(match x.state { DeliveryState::Dead => "bad", DeliveryState::Pending if x.attempts > 0 => "warn", _ => "" }) {
                        td.n { (x.id) } td.n { (x.run) } td { (x.destination) }
                        td { (x.n) " (" (x.content_type) ")" }
                        td { (x.state.as_str()) }
                        td.n { (x.attempts) }
                        td { @match (&x.last_error, reasons) { (Some(r), true) => (r), (Some(_), false) => span.muted { "(phi role)" }, _ => "" } }
                        td { @match (x.state, x.delivered_at) {
                            (DeliveryState::Delivered, Some(t)) => (iso(t)),
                            (DeliveryState::Pending, _) => { "next try " (iso(x.next_attempt_at)) },
                            _ => "",
                        } }
                    }
                }
            }
        }
        h2 { "Content" }
        @if !want_body {
            @if viewer.may(Role::Phi) {
                p { a id="show-body" href=(format!("/console/messages/{}?body=1", s.id)) { "Show the message and its outputs" } }
                p.hint { "Patient data: each view is recorded in the audit trail." }
            } @else {
                p.muted { "A message's content is shown to the phi role." }
            }
        } @else {
            h2 { "Input (" (d.content_type) ")" }
            (body(&d.content_type, &d.body))
            @for x in d.deliveries.iter().filter(|x| x.run == d.run) {
                h2 { "Output " (x.n) " to " (x.destination) " (" (x.content_type) ")" }
                (body(&x.content_type, &x.body))
            }
        }
    };
    Ok(view::page(
        viewer,
        &format!("Message {}", s.control_id),
        "/console/messages",
        content,
    ))
}

/// Resend or reprocess one message (`ID/resend`, `ID/reprocess`), then back
/// to its page.
pub(super) fn act(console: &Console, viewer: &Viewer, rest: &str) -> Result<Reply, JournalError> {
    let Some((id, action)) = rest.rsplit_once('/') else {
        return Ok(problem(StatusCode::NOT_FOUND, "no such action"));
    };
    let ids = vec![id.to_string()];
    match action {
        "resend" => {
            let resent = console.journal().resend(&ids)?;
            console.pipeline.wake_dispatchers();
            console.audit(
                &viewer.caller,
                "messages.resend",
                ids,
                format!("queued {}", resent.queued),
            );
        }
        "reprocess" => {
            let done = console.journal().reprocess(&ids)?;
            console.pipeline.wake_reprocess();
            if !done.in_progress.is_empty() {
                return Ok(problem(
                    StatusCode::CONFLICT,
                    "this message is still on its way through the plugins; try again in a moment",
                ));
            }
            console.audit(
                &viewer.caller,
                "messages.reprocess",
                ids,
                format!("queued {}", done.queued),
            );
        }
        _ => return Ok(problem(StatusCode::NOT_FOUND, "no such action")),
    }
    Ok(view::redirect(&format!(
        "/console/messages/{}?done={action}",
        form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    )))
}
