//! `weft admin token add|list|revoke`: the admin API's tokens, in the token
//! file `[admin] tokens` names. A running `weft run` sees a change at its
//! next request.

use std::process::ExitCode;

use anyhow::{Context, bail};
use weft::admin::tokens::{Role, TokenFile};

/// Arguments of `weft admin`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: super::ConfigArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The admin API's bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Make a token: it is printed once, and only its SHA-256 is kept.
    Add {
        /// Its name (who holds it): letters, digits, '.', '_', '-'.
        name: String,
        /// read (status, lists, plugins), phi (also bodies and reasons) or
        /// operate (also resend, purge, reload).
        #[arg(long)]
        role: Role,
    },
    /// The tokens: name, role, when made.
    List,
    /// Remove a token; requests carrying it are refused from now on.
    Revoke {
        /// Its name.
        name: String,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let Some(admin) = &config.admin else {
        bail!(
            "{}: no [admin] section: there is no admin API to hold tokens for",
            config.source
        );
    };
    let path = &admin.tokens;
    let Command::Token(command) = args.command;
    let mut file = if path.exists() {
        TokenFile::load(path)?
    } else {
        TokenFile::default()
    };
    match command {
        TokenCommand::Add { name, role } => {
            let token = file.add(&name, role)?;
            file.save(path)?;
            audit(&config, "token.add", format!("{name} ({})", role.as_str()));
            eprintln!(
                "token {name} ({}) added to {}; it is shown this once:",
                role.as_str(),
                path.display()
            );
            println!("{token}");
        }
        TokenCommand::List => {
            if file.tokens().is_empty() {
                eprintln!("no tokens in {}", path.display());
            }
            for (name, t) in file.tokens() {
                println!("{name:<24} {:<8} created {}", t.role.as_str(), t.created);
            }
        }
        TokenCommand::Revoke { name } => {
            file.revoke(&name)?;
            file.save(path)
                .with_context(|| format!("revoking {name}"))?;
            audit(&config, "token.revoke", name.clone());
            eprintln!("token {name} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Records a token change in the journal's audit trail (making the journal
/// if there is none yet); a failure is reported, the change stands.
fn audit(config: &weft::config::Config, action: &'static str, what: String) {
    let record = weft::journal::audit::Record::cli(action, Vec::new(), format!("ok: {what}"));
    let written = weft::journal::for_config(
        config,
        weft::journal::Use::Attach(weft::journal::Attach::CreateIfMissing),
    )
    .and_then(|journal| journal.audit_append(&record));
    if let Err(e) = written {
        eprintln!("warning: the audit entry for {action} was not written: {e}");
    }
}
