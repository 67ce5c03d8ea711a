//! The key tables: each section lists the keys it accepts once, and that one
//! list both admits a key and says what was expected when one is unknown,
//! so the two cannot drift apart.

use toml::Spanned;
use toml::de::DeString;

use super::check::Checker;

/// A key a table accepts, and the kinds (of source or destination) that
/// accept it; none listed: every kind.
pub(super) struct Key {
    /// The key as written in `weft.toml`.
    pub(super) name: &'static str,
    /// The kinds that take it; empty for all.
    pub(super) kinds: &'static [&'static str],
}

/// A key every kind of the table accepts.
pub(super) const fn any(name: &'static str) -> Key {
    Key { name, kinds: &[] }
}

/// A key only the given kinds accept.
pub(super) const fn only(kinds: &'static [&'static str], name: &'static str) -> Key {
    Key { name, kinds }
}

/// The names in `keys` that `kind` accepts, in table order.
pub(super) fn accepted<'k>(
    keys: &'k [Key],
    kind: &'k str,
) -> impl Iterator<Item = &'static str> + 'k {
    keys.iter()
        .filter(move |k| k.kinds.is_empty() || k.kinds.contains(&kind))
        .map(|k| k.name)
}

impl Checker<'_> {
    /// True when `keys` admits `key` for `kind` (`""` for tables without
    /// kinds); otherwise reports it at `path` as unknown, with the keys that
    /// `kind` accepts.
    pub(super) fn known(
        &mut self,
        keys: &[Key],
        kind: &str,
        key: &Spanned<DeString<'_>>,
        path: &str,
    ) -> bool {
        let name = key.get_ref().as_ref();
        if accepted(keys, kind).any(|k| k == name) {
            return true;
        }
        let expected: Vec<&str> = accepted(keys, kind).collect();
        self.error(
            key.span().start,
            path,
            format!("unknown key (expected {})", expected.join(", ")),
        );
        false
    }
}
