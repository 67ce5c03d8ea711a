//! `[trust]`: whose plugin signatures the site trusts, and whether every
//! plugin must carry one. A plugin may pin its signer (`[plugins.NAME]
//! signer`); see [`crate::plugins::trust`] for what each case does.

use std::path::PathBuf;
use std::sync::Arc;

use toml::de::{DeTable, DeValue};

use super::check::Checker;
use super::keys::{Key, any};
use crate::plugins::trust::TrustList;

/// The keys of `[trust]`.
pub(super) const KEYS: &[Key] = &[any("keys"), any("require_signed")];

/// The site's trust in plugin signers (`[trust]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustConfig {
    /// The trust list file (`keys`); `None`: no key is trusted.
    pub keys: Option<PathBuf>,
    /// Every plugin must be signed by a key of the trust list.
    pub require_signed: bool,
    /// The trust list as read.
    pub list: Arc<TrustList>,
}

impl Checker<'_> {
    pub(super) fn trust(&mut self, t: &DeTable<'_>) -> TrustConfig {
        let mut trust = TrustConfig::default();
        for entry in t.iter() {
            let (k, v) = entry;
            let name = k.get_ref().as_ref();
            let key = format!("trust.{name}");
            if !self.known(KEYS, "", k, &key) {
                continue;
            }
            match name {
                "keys" => {
                    if let Some(path) = self.path(entry, &key, true)
                        && path.is_file()
                    {
                        match TrustList::load(&path) {
                            Ok(list) => trust.list = Arc::new(list),
                            Err(e) => self.error(v.span().start, &key, e),
                        }
                        trust.keys = Some(path);
                    }
                }
                "require_signed" => match v.get_ref() {
                    DeValue::Boolean(b) => trust.require_signed = *b,
                    _ => self.error(v.span().start, &key, "expected true or false"),
                },
                _ => {}
            }
        }
        trust
    }
}
