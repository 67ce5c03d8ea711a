//! `weft plugin keygen|sign|verify`: signing keys, signatures embedded in a
//! plugin's component, and checking them against a trust list.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use weft::plugins::engine::hex;
use weft::plugins::signature;
use weft::plugins::trust::{self, SignaturePolicy, TrustList};

/// Arguments of `weft plugin`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Make an ed25519 signing key: NAME.key (secret, 0600) and NAME.pub
    /// (its trust list entry, for the sites that trust it).
    Keygen {
        /// The signer's name, as trust lists will know it.
        name: String,
        /// Where to write the two files.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Sign a plugin: embed a signature over the component (and everything
    /// embedded in it) as its last section, replacing any earlier one. The
    /// file is replaced in one rename, safe under a running hot reload.
    Sign {
        /// The signing key (NAME.key from keygen).
        #[arg(long)]
        key: PathBuf,
        /// The component.
        plugin: PathBuf,
        /// Write the signed component here instead of over the input.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Say who signed a plugin, or why its signature does not hold; exit 1
    /// unless a key of the trust list signed it (and, with --signer, that
    /// one).
    Verify {
        /// The component.
        plugin: PathBuf,
        /// The trust list (the file `[trust] keys` names).
        #[arg(long)]
        trust: PathBuf,
        /// The signer it must have.
        #[arg(long)]
        signer: Option<String>,
    },
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Keygen { name, dir } => keygen(&name, &dir),
        Command::Sign { key, plugin, out } => sign(&key, &plugin, out.as_deref()),
        Command::Verify {
            plugin,
            trust,
            signer,
        } => verify(&plugin, &trust, signer),
    }
}

fn keygen(name: &str, dir: &Path) -> anyhow::Result<ExitCode> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || name.starts_with('.')
    {
        bail!("{name:?}: a key name is letters, digits, '-', '_' and '.', not starting with '.'");
    }
    let secret_path = dir.join(format!("{name}.key"));
    let public_path = dir.join(format!("{name}.pub"));
    for p in [&secret_path, &public_path] {
        if p.exists() {
            bail!(
                "{} exists: not overwritten (a lost key cannot be remade)",
                p.display()
            );
        }
    }
    let secret = signature::keyfile::generate_secret().map_err(anyhow::Error::msg)?;
    let public = signature::public_key(&secret);
    weft::private::write(
        &secret_path,
        signature::keyfile::secret_text(name, &secret).as_bytes(),
    )
    .with_context(|| format!("writing {}", secret_path.display()))?;
    weft::private::write_with(
        &public_path,
        signature::keyfile::trust_entry(name, &public).as_bytes(),
        (0o644, 0o755),
    )
    .with_context(|| format!("writing {}", public_path.display()))?;
    println!(
        "{}: the secret key (0600): keep it offline or in a secret store\n{}: its trust list entry (key {}); add it to a site's trust list:\n\n{}",
        secret_path.display(),
        public_path.display(),
        signature::key_id(&public),
        signature::keyfile::trust_entry(name, &public)
    );
    Ok(ExitCode::SUCCESS)
}

fn sign(key: &Path, plugin: &Path, out: Option<&Path>) -> anyhow::Result<ExitCode> {
    weft::private::check(key).map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    let (name, secret) = trust::read_secret_key(key).map_err(anyhow::Error::msg)?;
    let bytes = std::fs::read(plugin).with_context(|| format!("reading {}", plugin.display()))?;
    let signed = signature::sign(&bytes, &name, &secret)
        .map_err(|e| anyhow::anyhow!("{}: {e}", plugin.display()))?;
    let target = out.unwrap_or(plugin);
    let mode = std::fs::metadata(plugin).map_or(0o644, |m| m.permissions().mode() & 0o777);
    weft::private::write_with(target, &signed, (mode, 0o755))
        .with_context(|| format!("writing {}", target.display()))?;
    let (covered, _) = signature::split(&signed).map_err(anyhow::Error::msg)?;
    println!(
        "{}: signed by {name} (key {}), over {} bytes with sha256 {}",
        target.display(),
        signature::key_id(&signature::public_key(&secret)),
        covered.len(),
        hex(&<sha2::Sha256 as sha2::Digest>::digest(covered))
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(plugin: &Path, trust: &Path, signer: Option<String>) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(plugin).with_context(|| format!("reading {}", plugin.display()))?;
    let list = TrustList::load(trust).map_err(anyhow::Error::msg)?;
    let policy = SignaturePolicy {
        trust: std::sync::Arc::new(list),
        require_signed: true,
        signer,
    };
    let sha256 = hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    match policy.check(&bytes) {
        Ok(provenance) => {
            println!("{}: {provenance}; sha256 {sha256}", plugin.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            eprintln!("{}: not trusted: {reason}", plugin.display());
            Ok(ExitCode::from(super::EXIT_ERROR))
        }
    }
}
