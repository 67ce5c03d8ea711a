//! `weft messages`: what the journal knows, for operators.

use std::process::ExitCode;

use anyhow::{Context, bail};
use std::io::IsTerminal;
use weft::journal::audit::Record;

use weft::journal::query::{Filter, MAX_BULK, StatusFilter};
use weft::journal::time::{self, iso};
use weft::journal::{Attach, DeliveryState, Journal, Use};

/// Arguments of `weft messages`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: super::ConfigArg,
    #[command(subcommand)]
    command: Command,
}

/// Which messages: the filters of `list`, and of a bulk resend or
/// reprocessing.
#[derive(Debug, Clone, Default, clap::Args)]
pub(super) struct Selection {
    /// received, transformed, rejected, failed, pending or dead.
    #[arg(long)]
    status: Option<StatusFilter>,
    /// The source's name.
    #[arg(long)]
    source: Option<String>,
    /// MSH-9, `*` wildcards allowed (ADT^A0*).
    #[arg(long = "type")]
    message_type: Option<String>,
    /// MSH-10.
    #[arg(long)]
    control_id: Option<String>,
    /// The route's name.
    #[arg(long)]
    route: Option<String>,
    /// A patient identifier (PID-3's ID number, exactly): the messages
    /// about that patient. The search is recorded in the audit trail.
    #[arg(long)]
    patient: Option<String>,
    /// Received at or after (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], UTC).
    #[arg(long)]
    since: Option<String>,
    /// Received before (same forms).
    #[arg(long)]
    until: Option<String>,
}

impl Selection {
    /// The journal's filter for it (no limit set).
    pub(super) fn filter(self) -> anyhow::Result<Filter> {
        Ok(Filter {
            status: self.status,
            source: self.source,
            message_type: self.message_type,
            control_id: self.control_id,
            route: self.route,
            patient: self.patient,
            since: self.since.as_deref().map(time::parse).transpose()?,
            until: self.until.as_deref().map(time::parse).transpose()?,
            limit: 0,
            offset: 0,
        })
    }
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List messages, newest first.
    List {
        #[command(flatten)]
        select: Selection,
        /// Rows per page.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Page number, from 1.
        #[arg(long, default_value_t = 1)]
        page: usize,
    },
    /// Send outputs again: every delivery of the given messages, of the
    /// messages a search selects, or every dead delivery. A running `weft
    /// run` picks them up within a second.
    Resend {
        /// Message ids.
        ids: Vec<String>,
        /// Every delivery given up on.
        #[arg(long, conflicts_with = "ids")]
        dead: bool,
        #[command(flatten)]
        select: Selection,
        /// Act on a search's result without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Run messages through the plugins again, as they are live now (after
    /// a mapping fix): the given messages, or those a search selects. Each
    /// keeps its earlier outcome; its deliveries not yet made are replaced
    /// by the new run's. A running `weft run` takes them within a second; a
    /// stopped one at its next start.
    Reprocess {
        /// Message ids.
        ids: Vec<String>,
        #[command(flatten)]
        select: Selection,
        /// Act on a search's result without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Delete settled messages received before a date (pending work is
    /// never deleted) and give the space back.
    Purge {
        /// YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], UTC.
        #[arg(long)]
        before: String,
    },
    /// Show one message: its outcome, plugin versions and deliveries.
    Show {
        /// The message id.
        id: String,
        /// Also print the input and output bodies (patient data).
        #[arg(long)]
        body: bool,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let journal = weft::journal::for_config(&config, Use::Attach(Attach::Existing))?;
    match args.command {
        Command::Purge { before } => {
            let before = time::parse(&before)?;
            let purged = journal.purge(before)?;
            let m = purged.messages;
            audit(
                &*journal,
                Record::cli(
                    "messages.purge",
                    Vec::new(),
                    format!("purged {m} messages received before {}", iso(before)),
                ),
            );
            println!(
                "purged {m} messages and {} deliveries received before {}",
                purged.deliveries,
                iso(before)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Resend {
            ids,
            dead,
            select,
            yes,
        } => {
            if dead {
                if !select.filter()?.is_everything() {
                    bail!("--dead takes every dead delivery; filters do not apply to it");
                }
                let n = journal.resend_dead()?;
                audit(
                    &*journal,
                    Record::cli("messages.resend-dead", Vec::new(), format!("queued {n}")),
                );
                println!("{n} dead deliveries queued again");
                return Ok(ExitCode::SUCCESS);
            }
            let Some((ids, selected)) = chosen(&*journal, ids, select, yes, "resend")? else {
                return Ok(ExitCode::SUCCESS);
            };
            let resent = journal.resend(&ids)?;
            let (n, none) = (resent.queued, resent.without_outputs);
            audit(
                &*journal,
                Record::cli("messages.resend", ids, format!("queued {n}{selected}")),
            );
            println!("{n} deliveries queued again");
            for id in &none {
                eprintln!(
                    "{id}: no outputs to send (unknown id, or the message was rejected or failed)"
                );
            }
            Ok(if none.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(super::EXIT_ERROR)
            })
        }
        Command::Reprocess { ids, select, yes } => {
            let Some((ids, selected)) = chosen(&*journal, ids, select, yes, "reprocess")? else {
                return Ok(ExitCode::SUCCESS);
            };
            let done = journal.reprocess(&ids)?;
            audit(
                &*journal,
                Record::cli(
                    "messages.reprocess",
                    ids,
                    format!("queued {}{selected}", done.queued),
                ),
            );
            println!(
                "{} messages queued to run through the plugins again ({} deliveries not yet made are replaced)",
                done.queued, done.superseded
            );
            for id in &done.unknown {
                eprintln!("{id}: no such message");
            }
            for id in &done.in_progress {
                eprintln!("{id}: still on its way through the plugins; left alone");
            }
            for id in &done.own_events {
                eprintln!("{id}: an alert event of Weft's own; never reprocessed");
            }
            Ok(
                if done.unknown.is_empty()
                    && done.in_progress.is_empty()
                    && done.own_events.is_empty()
                {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(super::EXIT_ERROR)
                },
            )
        }
        Command::List {
            select,
            limit,
            page,
        } => {
            let by_patient = select.patient.is_some();
            let filter = Filter {
                limit: limit.max(1),
                offset: limit
                    .max(1)
                    .checked_mul(page.saturating_sub(1))
                    .filter(|o| i64::try_from(*o).is_ok())
                    .ok_or_else(|| {
                        anyhow::anyhow!("--page {page} is past any page there can be")
                    })?,
                ..select.filter()?
            };
            let rows = journal.list(&filter)?;
            if by_patient {
                // Which messages concern a patient is patient data: shown
                // only once the search is on record.
                let ids = rows.iter().map(|r| r.id.clone()).collect();
                journal
                    .audit_append(&Record::cli("messages.search-patient", ids, "ok"))
                    .context("cannot record this search in the audit trail; nothing is shown")?;
            }
            println!(
                "{:<36}  {:<20}  {:<10}  {:<12}  {:<20}  {:<11}  deliveries",
                "id", "received (UTC)", "source", "type", "control id", "status"
            );
            for r in &rows {
                println!(
                    "{:<36}  {:<20}  {:<10}  {:<12}  {:<20}  {:<11}  {} delivered, {} pending, {} dead",
                    r.id,
                    iso(r.received_at),
                    r.source,
                    r.message_type,
                    r.control_id,
                    r.status,
                    r.delivered,
                    r.pending,
                    r.dead
                );
            }
            if rows.len() == filter.limit {
                eprintln!("(more: --page {})", page + 1);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { id, body } => {
            let Some(d) = journal.show(&id)? else {
                bail!("{}: no message {id}", journal.location());
            };
            if body && weft::journal::seal::is_sealed(&d.body) {
                bail!(
                    "message {id}: the body is encrypted, and this command was not given the \
                     journal's key: [runtime] encryption_key must name the key file ({}), \
                     readable by this user (under the package: `sudo -u weft weft messages ...`)",
                    config
                        .runtime
                        .encryption_key
                        .as_deref()
                        .map_or_else(|| "none is set".into(), |p| p.display().to_string())
                );
            }
            if body {
                // Patient data is shown only once its access is on record.
                journal
                    .audit_append(&Record::cli("message.body", vec![id.clone()], "ok"))
                    .context("cannot record this access in the audit trail; nothing is shown")?;
            }
            let s = &d.summary;
            println!("message     {}", s.id);
            println!(
                "received    {} from source {} ({})",
                iso(s.received_at),
                s.source,
                d.remote.as_deref().unwrap_or("-")
            );
            if let Some(subject) = &d.peer_subject {
                println!("certificate {subject}");
            }
            println!(
                "type        {}  control id {}  sender {} / {}",
                s.message_type, s.control_id, d.sender.0, d.sender.1
            );
            println!("route       {}", d.route);
            if d.run > 1 {
                println!("status      {} (run {})", s.status, d.run);
            } else {
                println!("status      {}", s.status);
            }
            if let Some(e) = &d.error {
                println!("error       {}", sealed_text(e));
            }
            for p in &d.plugins {
                match &p.declared_version {
                    Some(v) => println!(
                        "plugin      {}  version {v}  {}",
                        p.version(),
                        p.signature()
                    ),
                    None => println!("plugin      {}  {}", p.version(), p.signature()),
                }
            }
            for e in &d.earlier {
                let plugins: Vec<String> = e.plugins.iter().map(|p| p.version()).collect();
                println!(
                    "earlier     run {}: {}{} (replaced {}){}",
                    e.run,
                    e.status,
                    e.error
                        .as_deref()
                        .map(|r| format!(": {}", sealed_text(r)))
                        .unwrap_or_default(),
                    iso(e.replaced_at),
                    if plugins.is_empty() {
                        String::new()
                    } else {
                        format!(" via {}", plugins.join(", "))
                    }
                );
            }
            for del in &d.deliveries {
                let when = match (del.state, del.delivered_at) {
                    (DeliveryState::Delivered, Some(t)) => format!("at {}", iso(t)),
                    (DeliveryState::Pending, _) => format!("next try {}", iso(del.next_attempt_at)),
                    _ => String::new(),
                };
                println!(
                    "delivery    #{}{} output {} -> {}: {} after {} attempt(s) {when}{}",
                    del.id,
                    if d.run > 1 {
                        format!(" (run {})", del.run)
                    } else {
                        String::new()
                    },
                    del.n,
                    del.destination,
                    del.state,
                    del.attempts,
                    del.last_error
                        .as_deref()
                        .map(|e| format!("; last error: {}", sealed_text(e)))
                        .unwrap_or_default()
                );
            }
            if body {
                println!(
                    "\n--- input ({}) ---\n{}",
                    d.content_type,
                    String::from_utf8_lossy(&d.body).replace('\r', "\n")
                );
                for del in &d.deliveries {
                    println!(
                        "\n--- output {} to {} ({}) ---\n{}",
                        del.n,
                        del.destination,
                        del.content_type,
                        String::from_utf8_lossy(&del.body).replace('\r', "\n")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The messages a resend or reprocessing acts on: the ids given, or those
/// `select` finds, once the operator confirms their count (`--yes`, or
/// `y` at the prompt on a terminal). With them, what selected them, for
/// the audit trail. `None`: nothing to do (none match, or the operator
/// said no).
fn chosen(
    journal: &dyn Journal,
    ids: Vec<String>,
    select: Selection,
    yes: bool,
    verb: &str,
) -> anyhow::Result<Option<(Vec<String>, String)>> {
    let filter = select.filter()?;
    match (ids.is_empty(), filter.is_everything()) {
        (false, true) => return Ok(Some((ids, String::new()))),
        (false, false) => bail!("name message ids or select them with filters, not both"),
        (true, true) => bail!(
            "name message ids, or select messages with --status, --source, --type, --control-id, \
             --route, --patient, --since, --until"
        ),
        (true, false) => {}
    }
    let what = filter.describe();
    let ids = journal.select(&filter, MAX_BULK + 1)?;
    if ids.len() > MAX_BULK {
        bail!("more than {MAX_BULK} messages match ({what}); narrow the selection");
    }
    if ids.is_empty() {
        println!("no message matches ({what})");
        return Ok(None);
    }
    let n = ids.len();
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("{n} messages match ({what}); add --yes to {verb} them");
        }
        eprint!("{verb} {n} messages ({what})? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("nothing done");
            return Ok(None);
        }
    }
    Ok(Some((ids, format!("; selected {n} by {what}"))))
}

/// Appends an operator action done by this command to the audit trail; a
/// failure is reported (the action is done and cannot be taken back).
fn audit(journal: &dyn Journal, record: Record) {
    if let Err(e) = journal.audit_append(&record) {
        eprintln!(
            "warning: the audit entry for {} was not written: {e}",
            record.action
        );
    }
}

/// A reason as shown: `(encrypted)` when it is sealed and this command
/// has not the key.
fn sealed_text(stored: &str) -> &str {
    if weft::journal::seal::is_sealed_text(stored) {
        "(encrypted: this command was not given the journal's key)"
    } else {
        stored
    }
}
