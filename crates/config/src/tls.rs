//! `tls = { ... }` tables: a listener's certificate, a connection's trust.

use super::check::{Checker, Entry};
use super::keys::{Key, any};

/// The keys of a listener's `tls` table.
pub(super) const SERVER_KEYS: &[Key] = &[any("cert"), any("key"), any("client_ca")];

/// The keys of a connection's `tls` table.
pub(super) const CLIENT_KEYS: &[Key] = &[any("ca"), any("cert"), any("key"), any("server_name")];

impl Checker<'_> {
    /// A listener's `tls = { cert, key, client_ca }`, each file checked: it
    /// exists, holds PEM, is valid now, and the key is the certificate's.
    pub(super) fn server_tls(
        &mut self,
        entry: Entry<'_>,
        key: &str,
    ) -> Option<weft_tls::ServerTls> {
        let t = self.table(entry.1, key)?;
        let (mut cert, mut pkey, mut client_ca) = (None, None, None);
        for e in t.iter() {
            let k = e.0.get_ref().as_ref();
            let ekey = format!("{key}.{k}");
            if !self.known(SERVER_KEYS, "", e.0, &ekey) {
                continue;
            }
            match k {
                "cert" => cert = self.path(e, &ekey, true),
                "key" => pkey = self.path(e, &ekey, true),
                "client_ca" => client_ca = self.path(e, &ekey, true),
                _ => {} // not in the key table: reported by `known` above
            }
        }
        let at = entry.1.span().start;
        let (Some(cert), Some(pkey)) = (cert, pkey) else {
            self.error(at, key, "needs cert and key");
            return None;
        };
        let mut tls = weft_tls::ServerTls {
            cert,
            key: pkey,
            client_ca,
            fingerprint: String::new(),
        };
        tls.fingerprint = weft_tls::fingerprint(&tls.files());
        if [&tls.cert, &tls.key]
            .into_iter()
            .chain(&tls.client_ca)
            .all(|p| p.is_file())
            && let Err(e) = weft_tls::server_config(&tls)
        {
            self.error(at, key, e.to_string());
        }
        Some(tls)
    }

    /// A connection's `tls = { ca, cert, key, server_name }` (an empty
    /// table: the system's CAs), checked like [`Self::server_tls`].
    pub(super) fn client_tls(
        &mut self,
        entry: Entry<'_>,
        key: &str,
    ) -> Option<weft_tls::ClientTls> {
        let t = self.table(entry.1, key)?;
        let mut tls = weft_tls::ClientTls::default();
        for e in t.iter() {
            let k = e.0.get_ref().as_ref();
            let ekey = format!("{key}.{k}");
            if !self.known(CLIENT_KEYS, "", e.0, &ekey) {
                continue;
            }
            match k {
                "ca" => tls.ca = self.path(e, &ekey, true),
                "cert" => tls.cert = self.path(e, &ekey, true),
                "key" => tls.key = self.path(e, &ekey, true),
                "server_name" => tls.server_name = self.string(e, &ekey),
                _ => {} // not in the key table: reported by `known` above
            }
        }
        let at = entry.1.span().start;
        if [&tls.ca, &tls.cert, &tls.key]
            .into_iter()
            .flatten()
            .all(|p| p.is_file())
            && let Err(e) = weft_tls::client_config(&tls)
        {
            self.error(at, key, e.to_string());
        }
        Some(tls)
    }
}
