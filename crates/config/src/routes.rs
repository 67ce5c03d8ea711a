//! `[routes.NAME]`: the plugins a message runs through and where it goes.

use toml::de::{DeTable, DeValue};

use super::check::Checker;
use super::keys::{Key, any};

/// The keys of `[routes.NAME]`.
pub(super) const KEYS: &[Key] = &[any("plugins"), any("destinations"), any("match")];

/// One route (`[routes.NAME]`): the plugins a message runs through, in
/// order, and where their outputs go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteConfig {
    /// The route's name.
    pub name: String,
    /// Plugin names, in order; none passes messages through unchanged.
    pub plugins: Vec<String>,
    /// Destination names; an output that names none goes to all of them.
    pub destinations: Vec<String>,
    /// MSH-9 patterns (`ADT^A0*`, `ORU^R01`; `*` and `?` wildcards) that send
    /// a message here when its source names no route.
    pub matches: Vec<String>,
}

impl Checker<'_> {
    pub(super) fn route(
        &mut self,
        name: &str,
        t: &DeTable<'_>,
        key: &str,
        refs: &mut Vec<(usize, String, String)>,
        destination_refs: &mut Vec<(usize, String, String)>,
    ) -> RouteConfig {
        let mut route = RouteConfig {
            name: name.to_string(),
            ..RouteConfig::default()
        };
        for (k, v) in t.iter() {
            let kname = k.get_ref().as_ref();
            let key = format!("{key}.{kname}");
            if !self.known(KEYS, "", k, &key) {
                continue;
            }
            match kname {
                "destinations" => {
                    for (offset, d) in self.string_list(v, &key) {
                        destination_refs.push((offset, key.clone(), d.clone()));
                        route.destinations.push(d);
                    }
                }
                "match" => {
                    for (offset, pattern) in self.string_list(v, &key) {
                        if pattern.is_empty() || pattern.contains(char::is_whitespace) {
                            self.error(offset, &key, "a pattern is an MSH-9 value such as ADT^A0*");
                        }
                        route.matches.push(pattern);
                    }
                }
                "plugins" => match v.get_ref() {
                    DeValue::Array(items) => {
                        for item in items.iter() {
                            match item.get_ref() {
                                DeValue::String(s) => {
                                    refs.push((item.span().start, key.clone(), s.to_string()));
                                    route.plugins.push(s.to_string());
                                }
                                _ => self.error(item.span().start, &key, "expected a plugin name"),
                            }
                        }
                    }
                    _ => self.error(v.span().start, &key, "expected a list of plugin names"),
                },
                _ => {} // not in the key table: reported by `known` above
            }
        }
        route
    }
}
