//! Test certificates, made fresh for each test run (never committed): a
//! server CA and a client CA, a server certificate for localhost and
//! 127.0.0.1, a client certificate, an expired one, and a CA nobody trusts.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};

/// PEM files under a directory.
pub struct Pki {
    pub dir: PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

fn leaf(
    names: &[&str],
    cn: &str,
    org: Option<&str>,
    issuer: &Issuer<'_, KeyPair>,
    expired: bool,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    if let Some(o) = org {
        params.distinguished_name.push(DnType::OrganizationName, o);
    }
    if expired {
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
    }
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    /// Makes every file under `dir`.
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        let (sp, sk, server_ca) = ca("Weft Test Server CA");
        let server_issuer = Issuer::new(sp, sk);
        w("server-ca.pem", &server_ca);
        let (cert, key) = leaf(
            &["localhost", "127.0.0.1"],
            "localhost",
            None,
            &server_issuer,
            false,
        );
        w("server.pem", &cert);
        w("server.key", &key);
        let (cert, key) = leaf(
            &["localhost", "127.0.0.1"],
            "localhost",
            None,
            &server_issuer,
            true,
        );
        w("expired.pem", &cert);
        w("expired.key", &key);
        let (cp, ck, client_ca) = ca("Weft Test Client CA");
        let client_issuer = Issuer::new(cp, ck);
        w("client-ca.pem", &client_ca);
        let (cert, key) = leaf(
            &[],
            "lab-analyzer",
            Some("North Hospital"),
            &client_issuer,
            false,
        );
        w("client.pem", &cert);
        w("client.key", &key);
        let (rp, rk, rogue_ca) = ca("Rogue CA");
        let rogue_issuer = Issuer::new(rp, rk);
        w("rogue-ca.pem", &rogue_ca);
        let (cert, key) = leaf(&[], "intruder", None, &rogue_issuer, false);
        w("rogue-client.pem", &cert);
        w("rogue-client.key", &key);
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    /// A file's path, as TOML wants it.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}
