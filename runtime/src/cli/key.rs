//! `weft key`: the key that encrypts the journal's patient data at rest
//! (`[runtime] encryption_key`). `generate PATH` writes a new one;
//! `rotate NEW_KEY` makes a running weft seal with it from now on and seal
//! again, in the background, everything the journal holds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::api::{Api, ApiArgs};

/// Arguments of `weft key`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Write a new random key (32 bytes, hex) to PATH, a new file only
    /// its owner may read (0600). Keep a copy apart from the backups: a
    /// journal cannot be read without its key.
    Generate {
        /// The key file to write (it must not exist).
        path: PathBuf,
    },
    /// Make NEW_KEY the key that seals, in the running weft (its admin
    /// API), while it serves: the journal is sealed again with it in the
    /// background, resumably. Then set `encryption_key` to NEW_KEY and put
    /// the old key in `previous_encryption_keys`, so that a restart finds
    /// both until weft logs that everything is sealed with the new key.
    Rotate {
        #[command(flatten)]
        config: super::ConfigArg,
        #[command(flatten)]
        api: ApiArgs,
        /// The new key file (made by `weft key generate`), readable by
        /// the user weft runs as.
        new_key: PathBuf,
    },
}

/// Runs `weft key`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Generate { path } => {
            let id = weft::journal::seal::generate(&path)?;
            println!(
                "key {id} written to {} (0600)\n\
                 set `encryption_key = \"{}\"` in [runtime], make the file the service user's \
                 (`chown weft: {}` under the package), and keep a copy apart from the backups",
                path.display(),
                path.display(),
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Rotate {
            config,
            api,
            new_key,
        } => {
            let config_file = config.file();
            let config = config.load()?;
            let Some(old) = config.runtime.encryption_key.clone() else {
                anyhow::bail!(
                    "{}: no [runtime] encryption_key: the journal is not encrypted; set one and restart \
                     (what the journal holds is then sealed in the background)",
                    config.source
                );
            };
            // The running weft reads the file: a path it finds whatever
            // its working directory.
            let new_key = std::fs::canonicalize(&new_key)
                .with_context(|| format!("{}", new_key.display()))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let api = runtime.block_on(async { Api::new(&api, &config) })?;
            let body = serde_json::json!({ "path": new_key.display().to_string() });
            let answer = runtime.block_on(api.request("POST", "/journal/key", Some(&body)))?;
            let id = answer["key_id"].as_str().unwrap_or_default();
            println!(
                "the running weft seals with key {id} from now on; what the journal holds is \
                 sealed again in the background (its log says when all is).\n\
                 Before the next restart, in {} (and, for a journal several nodes share, \
                 in each node's configuration):\n  \
                 encryption_key = \"{}\"\n  previous_encryption_keys = [\"{}\"]\n\
                 and once all is sealed again, take the old key out and destroy it.",
                config_file
                    .as_deref()
                    .map_or_else(|| config.source.clone(), |p| p.display().to_string()),
                new_key.display(),
                std::fs::canonicalize(&old).unwrap_or(old).display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
