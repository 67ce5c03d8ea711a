//! TLS settings and what they build: certificates and keys read from PEM
//! files, rustls server and client configurations (TLS 1.2 and 1.3 only),
//! and what is wrong with a certificate, said plainly (missing, not PEM,
//! expired, not matching its key).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A listener's TLS settings (`tls = { cert, key, client_ca }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// Its certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by one of these
    /// CAs (mutual TLS).
    pub client_ca: Option<PathBuf>,
    /// The sha256 of the files' contents when the configuration was read:
    /// a renewed certificate changes it, so a reload restarts the listener
    /// with the new files.
    pub fingerprint: String,
}

/// A connection's TLS settings (`tls = { ca, cert, key, server_name }`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// CAs to trust instead of the system's (PEM).
    pub ca: Option<PathBuf>,
    /// A client certificate chain to present (PEM).
    pub cert: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
    /// The name to check the server's certificate against, when it is not
    /// the host of the address.
    pub server_name: Option<String>,
    /// The sha256 of the files' contents when the configuration was read
    /// (see [`ServerTls::fingerprint`]).
    pub fingerprint: String,
}

impl ServerTls {
    /// Its files.
    pub fn files(&self) -> Vec<&Path> {
        [&self.cert, &self.key]
            .into_iter()
            .chain(&self.client_ca)
            .map(PathBuf::as_path)
            .collect()
    }
}

impl ClientTls {
    /// Its files.
    pub fn files(&self) -> Vec<&Path> {
        [&self.ca, &self.cert, &self.key]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
            .collect()
    }
}

/// The sha256 (hex) of the contents of `files`, in order; a file that
/// cannot be read, or is larger than [`MAX_PEM_FILE`], counts as empty.
pub fn fingerprint(files: &[&Path]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in files {
        h.update(f.as_os_str().as_encoded_bytes());
        h.update([0]);
        h.update(Sha256::digest(read(f).unwrap_or_default()));
    }
    format!("{:x}", h.finalize())
}

/// What is wrong with a TLS setting.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file larger than a PEM file can be ([`MAX_PEM_FILE`]).
    #[error("{} is larger than a PEM file can be ({MAX_PEM_FILE} bytes)", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A file holds no PEM object of the expected kind.
    #[error("{} holds no PEM {what}", path.display())]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What was expected there.
        what: &'static str,
    },
    /// A certificate is not valid now.
    #[error("the certificate in {} {when}", path.display())]
    Validity {
        /// The file.
        path: PathBuf,
        /// `expired on …` or `is not valid before …`.
        when: String,
    },
    /// A certificate that cannot be parsed.
    #[error("{} holds a certificate that cannot be read: {reason}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error("the key in {} does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the setting.
    #[error("{0}")]
    Config(String),
}

/// The largest PEM file read (a system CA bundle is a few hundred KiB).
pub const MAX_PEM_FILE: u64 = 4 << 20;

/// Reads a PEM file, at most [`MAX_PEM_FILE`] bytes of it.
fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let err = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut data = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_FILE + 1).read_to_end(&mut data))
        .map_err(err)?;
    if data.len() as u64 > MAX_PEM_FILE {
        return Err(TlsError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(data)
}

/// The certificates of a PEM file, each checked to be valid now.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NotPem {
            path: path.to_path_buf(),
            what: "certificate",
        });
    }
    for cert in &certs {
        check_validity(path, cert)?;
    }
    Ok(certs)
}

/// When the first of the certificates in a PEM file stops being valid
/// (`notAfter`, seconds since the Unix epoch), whether or not it is valid
/// now: what `weft doctor` counts down to.
pub fn earliest_expiry(path: &Path) -> Result<i64, TlsError> {
    let pem = read(path)?;
    let mut earliest: Option<i64> = None;
    for cert in CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok) {
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&cert).map_err(|e| TlsError::BadCertificate {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let at = parsed.validity().not_after.timestamp();
        earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }
    earliest.ok_or_else(|| TlsError::NotPem {
        path: path.to_path_buf(),
        what: "certificate",
    })
}

fn check_validity(path: &Path, cert: &CertificateDer<'_>) -> Result<(), TlsError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(cert).map_err(|e| TlsError::BadCertificate {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let validity = parsed.validity();
    let now = x509_parser::time::ASN1Time::now();
    let when = if now > validity.not_after {
        format!("expired on {}", validity.not_after)
    } else if now < validity.not_before {
        format!("is not valid before {}", validity.not_before)
    } else {
        return Ok(());
    };
    Err(TlsError::Validity {
        path: path.to_path_buf(),
        when,
    })
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::NotPem {
        path: path.to_path_buf(),
        what: "private key",
    })
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(path)? {
        store
            .add(cert)
            .map_err(|e| TlsError::Config(format!("{}: {e}", path.display())))?;
    }
    Ok(store)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certified key of a certificate file and a key file, checked to
/// belong together.
fn certified_key(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = certificates(cert)?;
    let der = private_key(key)?;
    let signing = provider()
        .key_provider
        .load_private_key(der.clone_key())
        .map_err(|e| TlsError::Config(format!("{}: {e}", key.display())))?;
    let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing);
    if certified.keys_match().is_err() {
        return Err(TlsError::KeyMismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        });
    }
    Ok((chain, der))
}

/// A server configuration: TLS 1.2 and 1.3, the certificate and key, and
/// client certificates required when `client_ca` is set.
pub fn server_config(t: &ServerTls) -> Result<Arc<ServerConfig>, TlsError> {
    let (chain, key) = certified_key(&t.cert, &t.key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &t.client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .build()
                    .map_err(|e| TlsError::Config(format!("{}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain, key)
        .map(Arc::new)
        .map_err(|e| TlsError::Config(e.to_string()))
}

/// A client configuration: the given CA (else the system's roots) and the
/// client certificate when one is set.
pub fn client_config(t: &ClientTls) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match &t.ca {
        Some(ca) => roots(ca)?,
        None => {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = store.add(cert);
            }
            if store.is_empty() {
                return Err(TlsError::Config(
                    "no CA given and no system CA certificates found (install ca-certificates, or set tls.ca)".into(),
                ));
            }
            store
        }
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots);
    let config = match (&t.cert, &t.key) {
        (Some(cert), Some(key)) => {
            let (chain, key) = certified_key(cert, key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Config(e.to_string()))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(TlsError::Config(
                "a client certificate needs both cert and key".into(),
            ));
        }
    };
    Ok(Arc::new(config))
}

/// A client configuration that trusts nothing: for a connector that only
/// ever speaks plain HTTP.
pub fn plain_only_client_config() -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map(|b| {
            b.with_root_certificates(RootCertStore::empty())
                .with_no_client_auth()
        });
    match config {
        Ok(c) => Arc::new(c),
        // The ring provider supports both versions: not reached.
        Err(_) => Arc::new(
            ClientConfig::builder()
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth(),
        ),
    }
}

/// The name to verify a server's certificate against: `server_name` when
/// set, else the host part of `address` (`HOST:PORT`).
pub fn server_name(t: &ClientTls, address: &str) -> Result<ServerName<'static>, TlsError> {
    let host = match &t.server_name {
        Some(n) => n.clone(),
        None => address
            .rsplit_once(':')
            .map_or(address, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    };
    ServerName::try_from(host.clone())
        .map_err(|_| TlsError::Config(format!("{host:?} is not a valid TLS server name")))
}

/// The subject of the certificate a client presented (`CN=…, O=…`).
pub fn peer_subject(certs: Option<&[CertificateDer<'_>]>) -> Option<String> {
    let leaf = certs?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).ok()?;
    Some(parsed.subject().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_past_the_cap_is_refused_not_read_whole() {
        for path in ["/dev/zero", "/dev/urandom"] {
            let e = certificates(Path::new(path)).unwrap_err();
            assert!(matches!(e, TlsError::TooLarge { .. }), "{e}");
        }
        // An unreadable file counts as empty in a fingerprint, and so does
        // one past the cap: it never hangs on a device.
        use sha2::{Digest, Sha256};
        let mut empty = Sha256::new();
        empty.update(b"/dev/zero\0");
        empty.update(Sha256::digest(b""));
        assert_eq!(
            fingerprint(&[Path::new("/dev/zero")]),
            format!("{:x}", empty.finalize())
        );
    }
}
