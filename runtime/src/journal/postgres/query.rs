//! The operators' questions in PostgreSQL: which messages, what became of
//! one. The same questions as `../sqlite/query.rs`, in PostgreSQL's
//! dialect (numbered parameters; a message type's `*` wildcards as a
//! regular expression where SQLite has `GLOB`).

use postgres::Client;
use postgres::types::ToSql;

use crate::journal::query::{
    DeliveryRow, Detail, EarlierRun, Filter, SUMMARY, StatusFilter, Summary, plugin_uses,
};
use crate::journal::{JournalError, Recorded, RecordedOutput};

type Param = Box<dyn ToSql + Sync>;

fn read(e: postgres::Error) -> JournalError {
    JournalError::Read(super::conn::describe(&e))
}

fn parsed<T: std::str::FromStr<Err = String>>(text: String) -> Result<T, JournalError> {
    text.parse().map_err(JournalError::Read)
}

fn count(r: &postgres::Row, i: usize) -> u64 {
    u64::try_from(r.get::<_, i64>(i)).unwrap_or(0)
}

fn summary(r: &postgres::Row) -> Result<Summary, JournalError> {
    Ok(Summary {
        id: r.get(0),
        received_at: r.get(1),
        source: r.get(2),
        message_type: r.get(3),
        control_id: r.get(4),
        status: parsed(r.get(5))?,
        delivered: count(r, 6),
        pending: count(r, 7),
        dead: count(r, 8),
    })
}

/// A `GLOB` pattern (`*`, `?`, `[…]`) as an anchored regular expression.
pub(super) fn glob_regex(glob: &str) -> String {
    let mut out = String::from("^");
    let mut class = false;
    for c in glob.chars() {
        match c {
            _ if class => {
                if c == ']' {
                    class = false;
                }
                if c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => {
                class = true;
                out.push('[');
            }
            c if c.is_ascii_alphanumeric() || !c.is_ascii() => out.push(c),
            c => {
                out.push('\\');
                out.push(c);
            }
        }
    }
    if class {
        // An unclosed class matches itself, as in GLOB.
        return format!("^{}$", regex_literal(glob));
    }
    out.push('$');
    out
}

fn regex_literal(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escape = c.is_ascii() && !c.is_ascii_alphanumeric();
            escape.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// The `WHERE` clause (empty, or with its leading space) and its
/// arguments for the messages `filter` keeps.
fn conditions(filter: &Filter) -> (String, Vec<Param>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Param> = Vec::new();
    let mut push = |clause: &str, arg: Param| {
        args.push(arg);
        clauses.push(clause.replace('?', &format!("${}", args.len())));
    };
    match filter.status {
        Some(StatusFilter::Delivery(s)) => push(
            "EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.state = ?)",
            Box::new(s.as_str().to_string()),
        ),
        Some(StatusFilter::Message(s)) => push("m.status = ?", Box::new(s.as_str().to_string())),
        None => {}
    }
    if let Some(s) = &filter.source {
        push("m.source = ?", Box::new(s.clone()));
    }
    if let Some(t) = &filter.message_type {
        push("m.message_type ~ ?", Box::new(glob_regex(t)));
    }
    if let Some(c) = &filter.control_id {
        push("m.control_id = ?", Box::new(c.clone()));
    }
    if let Some(r) = &filter.route {
        push("m.route = ?", Box::new(r.clone()));
    }
    if let Some(p) = &filter.patient {
        push(
            "m.id IN (SELECT message_id FROM patient_ids WHERE id = ?)",
            Box::new(p.clone()),
        );
    }
    if let Some(t) = filter.since {
        push("m.received_at >= ?", Box::new(t));
    }
    if let Some(t) = filter.until {
        push("m.received_at < ?", Box::new(t));
    }
    if clauses.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", clauses.join(" AND ")), args)
    }
}

fn refs(args: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    args.iter().map(|a| a.as_ref()).collect()
}

/// Messages matching `filter`, newest first.
pub fn list(c: &mut Client, filter: &Filter) -> Result<Vec<Summary>, JournalError> {
    let (conditions, mut args) = conditions(filter);
    let n = args.len();
    let sql = format!(
        "{SUMMARY}{conditions} ORDER BY m.received_at DESC, m.id DESC LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    args.push(Box::new(i64::try_from(filter.limit).unwrap_or(i64::MAX)));
    args.push(Box::new(i64::try_from(filter.offset).unwrap_or(i64::MAX)));
    c.query(&sql, &refs(&args))
        .map_err(read)?
        .iter()
        .map(summary)
        .collect()
}

/// The ids of the messages matching `filter` (its limit and offset aside),
/// newest first, at most `max`.
pub fn select(c: &mut Client, filter: &Filter, max: usize) -> Result<Vec<String>, JournalError> {
    let (conditions, mut args) = conditions(filter);
    let sql = format!(
        "SELECT m.id FROM messages m{conditions} ORDER BY m.received_at DESC, m.id DESC LIMIT ${}",
        args.len() + 1
    );
    args.push(Box::new(i64::try_from(max).unwrap_or(i64::MAX)));
    Ok(c.query(&sql, &refs(&args))
        .map_err(read)?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Message `id` as recorded, and its current run's outputs: each output
/// once (the first destination's row of each `n`).
pub fn recorded(c: &mut Client, id: &str) -> Result<Option<Recorded>, JournalError> {
    let Some(r) = c
        .query_opt(
            "SELECT id, source, remote, peer_subject, content_type, body, message_type, route,
                    status, error, run
             FROM messages WHERE id = $1",
            &[&id],
        )
        .map_err(read)?
    else {
        return Ok(None);
    };
    let run: i32 = r.get(10);
    let outputs = c
        .query(
            "SELECT content_type, body FROM deliveries
             WHERE message_id = $1 AND run = $2
               AND id IN (SELECT MIN(id) FROM deliveries WHERE message_id = $1 AND run = $2 GROUP BY n)
             ORDER BY n",
            &[&id, &run],
        )
        .map_err(read)?
        .iter()
        .map(|o| RecordedOutput {
            content_type: o.get(0),
            body: o.get(1),
        })
        .collect();
    Ok(Some(Recorded {
        id: r.get(0),
        source: r.get(1),
        remote: r.get(2),
        peer_subject: r.get(3),
        content_type: r.get(4),
        body: r.get(5),
        message_type: r.get(6),
        route: r.get(7),
        status: parsed(r.get(8))?,
        error: r.get(9),
        outputs,
    }))
}

/// One message with its deliveries; `None` when the id is unknown.
pub fn show(c: &mut Client, id: &str) -> Result<Option<Detail>, JournalError> {
    let Some(s) = c
        .query_opt(&format!("{SUMMARY} WHERE m.id = $1"), &[&id])
        .map_err(read)?
    else {
        return Ok(None);
    };
    let summary = summary(&s)?;
    let r = c
        .query_one(
            "SELECT remote, content_type, sending_application, sending_facility, route, error,
                    plugin_versions, body, peer_subject, run
             FROM messages WHERE id = $1",
            &[&id],
        )
        .map_err(read)?;
    let deliveries = c
        .query(
            "SELECT id, destination, n, content_type, state, attempts, last_error, delivered_at,
                    next_attempt_at, body, run
             FROM deliveries WHERE message_id = $1 ORDER BY run DESC, n, destination",
            &[&id],
        )
        .map_err(read)?
        .iter()
        .map(|d| {
            Ok(DeliveryRow {
                id: d.get(0),
                destination: d.get(1),
                n: i64::from(d.get::<_, i32>(2)),
                content_type: d.get(3),
                state: parsed(d.get(4))?,
                attempts: i64::from(d.get::<_, i32>(5)),
                last_error: d.get(6),
                delivered_at: d.get(7),
                next_attempt_at: d.get(8),
                body: d.get(9),
                run: i64::from(d.get::<_, i32>(10)),
            })
        })
        .collect::<Result<Vec<_>, JournalError>>()?;
    let earlier = c
        .query(
            "SELECT run, status, error, plugin_versions, replaced_at
             FROM outcomes WHERE message_id = $1 ORDER BY run",
            &[&id],
        )
        .map_err(read)?
        .iter()
        .map(|e| {
            Ok(EarlierRun {
                run: i64::from(e.get::<_, i32>(0)),
                status: parsed(e.get(1))?,
                error: e.get(2),
                plugins: plugin_uses(e.get::<_, Option<String>>(3).as_deref()),
                replaced_at: e.get(4),
            })
        })
        .collect::<Result<Vec<_>, JournalError>>()?;
    Ok(Some(Detail {
        summary,
        remote: r.get(0),
        peer_subject: r.get(8),
        content_type: r.get(1),
        sender: (r.get(2), r.get(3)),
        route: r.get(4),
        error: r.get(5),
        plugins: plugin_uses(r.get::<_, Option<String>>(6).as_deref()),
        body: r.get(7),
        deliveries,
        run: i64::from(r.get::<_, i32>(9)),
        earlier,
    }))
}

#[cfg(test)]
mod tests {
    use super::glob_regex;

    #[test]
    fn globs_become_anchored_regular_expressions() {
        assert_eq!(glob_regex("ADT^A0*"), "^ADT\\^A0.*$");
        assert_eq!(glob_regex("OR?^O01"), "^OR.\\^O01$");
        assert_eq!(glob_regex("ADT^A0[14]"), "^ADT\\^A0[14]$");
        assert_eq!(glob_regex("a.b(c)|d"), "^a\\.b\\(c\\)\\|d$");
        assert_eq!(glob_regex("x[1"), "^x\\[1$");
    }
}
