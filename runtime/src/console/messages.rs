//! The message browser: a search (patient identifier, control id, type,
//! source, route, status, time range), a page of results, and the bulk
//! actions on a search's result, done only once their count is confirmed.

use http::StatusCode;
use maud::{Markup, html};

use super::view::{self, problem};
use super::{Console, Form, Viewer, field};
use crate::admin::bulk::{self, Selected};
use crate::admin::tokens::Role;
use crate::httpd::Reply;
use crate::journal::query::{MAX_BULK, StatusFilter};
use crate::journal::time::iso;
use crate::journal::{JournalError, MessageStatus};

/// Rows per page.
const PAGE: usize = 50;

/// The search fields, as the form and `GET /messages` name them.
const FIELDS: [&str; 8] = [
    "patient",
    "control_id",
    "type",
    "source",
    "route",
    "status",
    "since",
    "until",
];

/// The search fields the form filled in (empty ones dropped).
fn search(form: &Form) -> Form {
    form.iter()
        .filter(|(k, v)| FIELDS.contains(&k.as_str()) && !v.trim().is_empty())
        .map(|(k, v)| (k.clone(), v.trim().to_string()))
        .collect()
}

fn hidden(search: &Form) -> Markup {
    html! {
        @for (k, v) in search { input type="hidden" name=(k) value=(v); }
    }
}

pub(super) fn page(
    console: &Console,
    viewer: &Viewer,
    query: &Form,
) -> Result<Reply, JournalError> {
    let search = search(query);
    let page: usize = field(query, "page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let mut params = search.clone();
    params.push(("limit".into(), PAGE.to_string()));
    params.push(("page".into(), page.to_string()));
    let filter = match crate::admin::filter(&params) {
        Ok(f) => f,
        Err(e) => return Ok(problem(StatusCode::BAD_REQUEST, &e)),
    };
    let by_patient = filter.patient.is_some();
    if by_patient && !viewer.may(Role::Phi) {
        console.audit(
            &viewer.caller,
            "messages.search-patient",
            Vec::new(),
            "refused: needs the phi role".into(),
        );
        return Ok(problem(
            StatusCode::FORBIDDEN,
            "a search by patient needs the phi role",
        ));
    }
    let rows = console.journal().list(&filter)?;
    if by_patient {
        // Which messages concern a patient is patient data: shown only
        // once the search is on record.
        let ids = rows.iter().map(|r| r.id.clone()).collect();
        console.audit_now(&viewer.caller, "messages.search-patient", ids, "ok".into())?;
    }
    let value = |k: &str| field(&search, k).unwrap_or_default().to_string();
    let link = |p: usize| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &search {
            q.append_pair(k, v);
        }
        q.append_pair("page", &p.to_string());
        format!("/console/messages?{}", q.finish())
    };
    let statuses = StatusFilter::NAMES.split(", ");
    let body = html! {
        form.search method="get" action="/console/messages" {
            @if viewer.may(Role::Phi) {
                label { "Patient identifier (PID-3)" input name="patient" value=(value("patient")) size="16"; }
            }
            label { "Control id (MSH-10)" input name="control_id" value=(value("control_id")) size="14"; }
            label { "Type (MSH-9, * allowed)" input name="type" value=(value("type")) size="10"; }
            label { "Source" input name="source" value=(value("source")) size="10"; }
            label { "Route" input name="route" value=(value("route")) size="10"; }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for s in statuses {
                        @if value("status") == s { option value=(s) selected { (s) } } @else { option value=(s) { (s) } }
                    }
                }
            }
            label { "Since (UTC)" input name="since" value=(value("since")) placeholder="YYYY-MM-DD[THH:MM]" size="16"; }
            label { "Until" input name="until" value=(value("until")) placeholder="YYYY-MM-DD[THH:MM]" size="16"; }
            button type="submit" { "Search" }
        }
        @if rows.is_empty() {
            p.muted { "No message matches." }
        } @else {
            table id="results" {
                tr {
                    th { "Received (UTC)" } th { "Type" } th { "Control id" } th { "Source" }
                    th { "Status" } th { "Deliveries" }
                }
                @for r in &rows {
                    @let bad = matches!(r.status, MessageStatus::Rejected | MessageStatus::Failed) || r.dead > 0;
                    tr class=(if bad { "bad" } else { "" }) {
                        td { a href=(format!("/console/messages/{}", r.id)) { (iso(r.received_at)) } }
                        td { (r.message_type) } td.mono { (r.control_id) } td { (r.source) }
                        td { (r.status.as_str()) }
                        td { (r.delivered) " delivered"
                             @if r.pending > 0 { ", " (r.pending) " pending" }
                             @if r.dead > 0 { ", " span.bad { (r.dead) " dead" } } }
                    }
                }
            }
            p.pager {
                @if page > 1 { a href=(link(page - 1)) { "← newer" } }
                @if rows.len() == PAGE { a href=(link(page + 1)) { "older →" } }
            }
        }
        @if viewer.may(Role::Operate) && !search.is_empty() && !filter.is_everything() {
            h2 { "Act on every message this search finds" }
            div.actions {
                @for (action, label) in [("reprocess", "Reprocess all…"), ("resend", "Resend all…")] {
                    form method="post" action="/console/bulk" {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        input type="hidden" name="action" value=(action);
                        (hidden(&search))
                        button type="submit" { (label) }
                    }
                }
            }
            p.hint { "You are shown the count and asked to confirm before anything is done." }
        }
    };
    Ok(view::page(viewer, "Messages", "/console/messages", body))
}

/// A bulk resend or reprocessing: without a confirmed count, the page that
/// asks for it; with one that is still right, the action and its result.
pub(super) fn bulk(console: &Console, viewer: &Viewer, form: &Form) -> Result<Reply, JournalError> {
    let action = match field(form, "action") {
        Some(a @ ("resend" | "reprocess")) => a,
        _ => return Ok(problem(StatusCode::BAD_REQUEST, "unknown action")),
    };
    let audit_action = if action == "reprocess" {
        "messages.reprocess"
    } else {
        "messages.resend"
    };
    let search = search(form);
    let expect = field(form, "expect").and_then(|e| e.parse().ok());
    let (ids, selected) = match bulk::select(&**console.journal(), &viewer.caller, &search, expect)?
    {
        Selected::Ids(ids, selected) => (ids, selected),
        Selected::Bad(reason) => return Ok(problem(StatusCode::BAD_REQUEST, &reason)),
        Selected::NeedsPhi(refused) => {
            console.audit(
                &viewer.caller,
                audit_action,
                Vec::new(),
                "refused: needs the phi role".into(),
            );
            return Ok(problem(StatusCode::FORBIDDEN, &refused.reason));
        }
        Selected::Confirm {
            matched,
            expected,
            what,
        } => {
            let body = html! {
                @if let Some(e) = expected {
                    p.problem { "The search found " (e) " messages when you were asked; it finds " (matched) " now." }
                }
                @if matched == 0 {
                    p { "No message matches (" (what) "). Nothing to do." }
                } @else {
                    p { strong { (matched) " messages" } " match (" (what) ")." }
                    p { @if action == "reprocess" {
                        "Each runs through its route's plugins again, as they are live now; its earlier outcome is kept, its deliveries not yet made are replaced."
                    } @else {
                        "Every output of each is sent again."
                    } }
                    form method="post" action="/console/bulk" {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        input type="hidden" name="action" value=(action);
                        input type="hidden" name="expect" value=(matched);
                        (hidden(&search))
                        button id="confirm" type="submit" { (if action == "reprocess" { "Reprocess " } else { "Resend " }) (matched) " messages" }
                    }
                    p.hint { "At most " (MAX_BULK) " messages at a time." }
                }
                p { a href="/console/messages" { "Cancel" } }
            };
            return Ok(view::page(viewer, "Confirm", "/console/messages", body));
        }
    };
    let (queued, result) = if action == "reprocess" {
        let done = console.journal().reprocess(&ids)?;
        console.pipeline.wake_reprocess();
        (
            done.queued,
            format!(
                "{} messages queued to run through the plugins again ({} deliveries not yet made replaced; {} still on their way left alone)",
                done.queued,
                done.superseded,
                done.in_progress.len()
            ),
        )
    } else {
        let resent = console.journal().resend(&ids)?;
        console.pipeline.wake_dispatchers();
        (
            resent.queued,
            format!("{} deliveries queued again", resent.queued),
        )
    };
    let n = ids.len();
    console.audit(
        &viewer.caller,
        audit_action,
        ids,
        format!("queued {queued}{selected}"),
    );
    let body = html! {
        p.notice id="done" { (result) "." }
        p { (n) " messages were selected. " a href="/console/messages" { "Back to messages" } }
    };
    Ok(view::page(viewer, "Done", "/console/messages", body))
}
