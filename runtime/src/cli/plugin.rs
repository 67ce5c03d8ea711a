//! `weft plugin keygen|sign|verify|inspect`: signing keys, signatures
//! embedded in a plugin's component, checking them against a trust list,
//! and what a plugin is before anyone turns it on.

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
    /// What a plugin is, read without running it: size, sha256, who signed
    /// it, the contract it was built against, its manifest (what it maps,
    /// the tables and settings it reads, the limits it needs), its imports
    /// and exports. What an operator reviews before turning it on.
    Inspect {
        /// The component.
        plugin: PathBuf,
        /// Check the signature against this trust list (else it is only
        /// checked against the file's own bytes).
        #[arg(long)]
        trust: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
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
        Command::Inspect {
            plugin,
            trust,
            json,
        } => inspect(&plugin, trust.as_deref(), json),
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

/// What `weft plugin inspect` reports.
#[derive(serde::Serialize)]
struct Inspection {
    file: String,
    size: usize,
    sha256: String,
    /// Who signed it (as the trust list sees it, with --trust), or why its
    /// signature does not hold.
    signature: String,
    /// The contract version its import and export names carry.
    contract: Option<String>,
    /// Whether this runtime links it.
    links: bool,
    manifest: Option<signature::manifest::Manifest>,
    imports: Vec<String>,
    exports: Vec<String>,
}

fn inspect(plugin: &Path, trust: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    use weft::plugins::contract::{self, WIT_PACKAGE};
    let bytes = std::fs::read(plugin).with_context(|| format!("reading {}", plugin.display()))?;
    let info = signature::manifest::read(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", plugin.display()))?;
    let signature = match trust {
        Some(t) => {
            let policy = SignaturePolicy {
                trust: std::sync::Arc::new(TrustList::load(t).map_err(anyhow::Error::msg)?),
                ..Default::default()
            };
            match policy.check(&bytes) {
                Ok(provenance) => provenance.to_string(),
                Err(why) => format!("refused: {why}"),
            }
        }
        None => match signature::verify(&bytes) {
            Ok(None) => "unsigned".into(),
            Ok(Some(v)) => format!(
                "signed, calling itself {} (key {}); --trust TRUST.toml says whether the site trusts it",
                v.claimed_signer,
                v.key_id()
            ),
            Err(e) => format!("bad signature: {e}"),
        },
    };
    let names = info.imports.iter().chain(&info.exports).map(String::as_str);
    let (contract, links) = match contract::version_of(names) {
        Some(Ok(v)) => (Some(v.to_string()), contract::linked(&v)),
        Some(Err(text)) => (Some(text), false),
        None => (None, false),
    };
    let report = Inspection {
        file: plugin.display().to_string(),
        size: bytes.len(),
        sha256: hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        signature,
        contract,
        links,
        manifest: info.manifest,
        imports: info.imports,
        exports: info.exports,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_string()
        } else {
            items.join(", ")
        }
    };
    println!("{}", report.file);
    println!("  size        {} bytes", report.size);
    println!("  sha256      {}", report.sha256);
    println!("  signature   {}", report.signature);
    match &report.contract {
        Some(v) if report.links => println!(
            "  contract    {WIT_PACKAGE}@{v} (this runtime links {}: compatible)",
            contract::linked_lines()
        ),
        Some(v) => println!(
            "  contract    {WIT_PACKAGE}@{v} (this runtime links {}: NOT compatible)",
            contract::linked_lines()
        ),
        None => {
            println!("  contract    none: not a Weft plugin (no {WIT_PACKAGE} import or export)")
        }
    }
    match &report.manifest {
        Some(m) => {
            println!(
                "  manifest    {} {} (built with contract {})",
                m.name, m.version, m.contract
            );
            println!("    maps             {}", list(&m.maps));
            println!("    tables           {}", list(&m.tables));
            println!("    optional tables  {}", list(&m.optional_tables));
            println!("    config           {}", list(&m.config));
            let claim = |n: u32, unit: &str| {
                if n == 0 {
                    "no claim".to_string()
                } else {
                    format!("{n} {unit}")
                }
            };
            println!(
                "    limits           memory {}, deadline {}",
                claim(m.limits.memory_mib, "MiB"),
                claim(m.limits.deadline_ms, "ms")
            );
        }
        None => println!(
            "  manifest    none (the plugin does not declare what it reads: weft_sdk::manifest!)"
        ),
    }
    for (what, names) in [("imports", &report.imports), ("exports", &report.exports)] {
        println!("  {what:<11} {}", names.len());
        for n in names {
            println!("    {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
