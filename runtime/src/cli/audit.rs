//! `weft audit list|verify`: the journal's audit trail of patient-data
//! access and operator actions.

use std::process::ExitCode;

use weft::journal::audit::{AuditFilter, Verdict};
use weft::journal::time::{self, iso};
use weft::journal::{Attach, Use};

/// Arguments of `weft audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: super::ConfigArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Entries, newest first.
    List {
        /// At or after (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], UTC).
        #[arg(long)]
        since: Option<String>,
        /// Only this one: a token's name, or os:USER.
        #[arg(long)]
        who: Option<String>,
        /// Only entries touching this message id.
        #[arg(long)]
        message: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Check every entry's hash and link; exit 1 naming the first broken one.
    Verify {
        /// A head printed by an earlier verify (`SEQ:SHA256`), kept
        /// elsewhere: that entry must still be in the trail, unchanged.
        #[arg(long, value_name = "SEQ:SHA256")]
        known: Option<String>,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let journal = weft::journal::for_config(&config, Use::Attach(Attach::Existing))?;
    let path = journal.location();
    match args.command {
        Command::List {
            since,
            who,
            message,
            limit,
        } => {
            let filter = AuditFilter {
                since: since.as_deref().map(time::parse).transpose()?,
                who,
                message,
                limit: limit.clamp(1, 100_000),
            };
            let entries = journal.audit_list(&filter)?;
            println!(
                "{:>6}  {:<19}  {:<20}  {:<4}  {:<20}  {:<21}  result / messages",
                "seq", "at (UTC)", "who", "via", "action", "from"
            );
            for e in &entries {
                println!(
                    "{:>6}  {:<19}  {:<20}  {:<4}  {:<20}  {:<21}  {}{}",
                    e.seq,
                    iso(e.at),
                    e.who,
                    e.via,
                    e.action,
                    e.remote,
                    e.result,
                    if e.messages.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", e.messages.join(", "))
                    }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { known } => match journal.audit_verify()? {
            Verdict::Intact {
                entries,
                head_seq,
                head_hash,
            } => {
                if let Some(known) = known {
                    let Some((seq, hash)) = known
                        .split_once(':')
                        .and_then(|(s, h)| Some((s.parse::<i64>().ok()?, h)))
                    else {
                        anyhow::bail!("--known: expected SEQ:SHA256, as verify prints it");
                    };
                    match journal.audit_hash_at(seq)? {
                        Some(h) if h == hash => {}
                        Some(_) => {
                            eprintln!(
                                "{}: audit trail rewritten: entry #{seq} no longer has the hash you kept",
                                path
                            );
                            return Ok(ExitCode::from(super::EXIT_ERROR));
                        }
                        None if seq > head_seq => {
                            eprintln!(
                                "{}: audit trail cut short: entry #{seq} you kept is gone and the newest is #{head_seq}",
                                path
                            );
                            return Ok(ExitCode::from(super::EXIT_ERROR));
                        }
                        None => println!(
                            "entry #{seq} was removed by retention (audit_retain_days): not comparable"
                        ),
                    }
                }
                println!(
                    "{}: audit trail intact: {entries} entries; newest {head_seq}:{head_hash}",
                    path
                );
                println!(
                    "(keep that SEQ:SHA256 elsewhere and pass it to a later verify as --known)"
                );
                Ok(ExitCode::SUCCESS)
            }
            Verdict::Broken { seq, reason } => {
                eprintln!("{}: audit trail broken at entry #{seq}: {reason}", path);
                Ok(ExitCode::from(super::EXIT_ERROR))
            }
        },
    }
}
