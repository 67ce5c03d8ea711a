//! `[trust]`: whose plugin signatures the site trusts, whether every
//! plugin must carry one, and whether a plugin asking for more than it is
//! granted is refused (`strict_grants`). A plugin may pin its signer (`[plugins.NAME]
//! signer`); see `weft_signature::trust` for what each case does.

use std::path::PathBuf;
use std::sync::Arc;

use toml::de::{DeTable, DeValue};

use super::check::Checker;
use super::keys::{Key, any};
use weft_signature::trust::TrustList;

/// The keys of `[trust]`.
pub(super) const KEYS: &[Key] = &[any("keys"), any("require_signed"), any("strict_grants")];

/// The site's trust in plugin signers (`[trust]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustConfig {
    /// The trust list file (`keys`); `None`: no key is trusted.
    pub keys: Option<PathBuf>,
    /// Every plugin must be signed by a key of the trust list.
    pub require_signed: bool,
    /// A plugin whose manifest asks for what the site does not grant (or
    /// that has no manifest) is refused, not only warned about.
    pub strict_grants: bool,
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
                "require_signed" | "strict_grants" => match v.get_ref() {
                    DeValue::Boolean(b) if name == "require_signed" => trust.require_signed = *b,
                    DeValue::Boolean(b) => trust.strict_grants = *b,
                    _ => self.error(v.span().start, &key, "expected true or false"),
                },
                _ => {}
            }
        }
        trust
    }
}
