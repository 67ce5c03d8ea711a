//! The checker: walks the TOML document, keeps every error with its place,
//! and reads typed values; each section's own keys are in its module.

use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{Config, ConfigError, Location};

pub(super) struct Checker<'a> {
    pub(super) text: &'a str,
    pub(super) file: &'a str,
    pub(super) base: &'a Path,
    pub(super) errors: Vec<ConfigError>,
    /// Where each plugin's `signer` key is, to report an unknown signer.
    pub(super) signer_offsets: std::collections::HashMap<String, usize>,
}

pub(super) type Entry<'i> = (
    &'i Spanned<toml::de::DeString<'i>>,
    &'i Spanned<DeValue<'i>>,
);

impl<'a> Checker<'a> {
    /// A checker of `text`, read from `file`, with paths relative to `base`.
    pub(super) fn new(text: &'a str, file: &'a str, base: &'a Path) -> Checker<'a> {
        Checker {
            text,
            file,
            base,
            errors: Vec::new(),
            signer_offsets: Default::default(),
        }
    }

    pub(super) fn location(&self, offset: usize) -> Location {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Location {
            file: self.file.to_string(),
            line,
            column,
        }
    }

    pub(super) fn error(&mut self, offset: usize, key: &str, message: impl Into<String>) {
        let location = self.location(offset);
        self.errors.push(ConfigError {
            location,
            key: key.to_string(),
            message: message.into(),
        });
    }

    pub(super) fn check(&mut self) -> Config {
        let mut config = Config {
            source: self.file.to_string(),
            ..Config::default()
        };
        config.runtime.data_dir = self.base.join("data");
        let doc = match DeTable::parse(self.text) {
            Ok(doc) => doc,
            Err(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                self.error(offset, "", e.message().trim().to_string());
                return config;
            }
        };
        let doc = doc.get_ref();
        let mut route_refs = Vec::new();
        let mut destination_refs = Vec::new();
        let mut source_route_refs = Vec::new();
        let mut alert_refs = Vec::new();
        let mut journal_at = 0;
        for (key, value) in doc.iter() {
            let k = key.get_ref().as_ref();
            match k {
                "runtime" => {
                    if let Some(t) = self.table(value, "runtime") {
                        config.runtime = self.runtime(t);
                    }
                }
                "admin" => {
                    if let Some(t) = self.table(value, "admin") {
                        config.admin = self.admin(key.span().start, t);
                    }
                }
                "journal" => {
                    if let Some(t) = self.table(value, "journal") {
                        config.journal = self.journal(key.span().start, t);
                        journal_at = key.span().start;
                    }
                }
                "trust" => {
                    if let Some(t) = self.table(value, "trust") {
                        config.trust = self.trust(t);
                    }
                }
                "plugins" => {
                    if let Some(t) = self.table(value, "plugins") {
                        for (name, v) in t.iter() {
                            let n = name.get_ref().as_ref().to_string();
                            let key = format!("plugins.{n}");
                            self.check_name(name.span().start, &key, &n);
                            if let Some(t) = self.table(v, &key) {
                                let mut spec = self.plugin(&n, t, &key, &mut config);
                                // The candidate: the same settings, tables and
                                // limits, its own file, no check samples (it
                                // serves nothing).
                                if let Some(file) = spec.candidate.clone() {
                                    if spec.candidate_share == 0 {
                                        spec.candidate_share =
                                            super::plugins::DEFAULT_CANDIDATE_SHARE;
                                    }
                                    let name = format!("{n}{}", super::plugins::CANDIDATE_SUFFIX);
                                    let candidate = super::PluginSpec {
                                        name: name.clone(),
                                        path: file,
                                        samples: Vec::new(),
                                        candidate: None,
                                        candidate_share: 0,
                                        candidate_of: Some(n.clone()),
                                        ..spec.clone()
                                    };
                                    if let Some(at) = config.plugin_locations.get(&n).cloned() {
                                        config.plugin_locations.insert(name.clone(), at);
                                    }
                                    config.plugins.insert(name, candidate);
                                }
                                config.plugins.insert(n, spec);
                            }
                        }
                    }
                }
                "routes" => {
                    if let Some(t) = self.table(value, "routes") {
                        for (name, v) in t.iter() {
                            let n = name.get_ref().as_ref().to_string();
                            let key = format!("routes.{n}");
                            self.check_name(name.span().start, &key, &n);
                            if let Some(t) = self.table(v, &key) {
                                let route =
                                    self.route(&n, t, &key, &mut route_refs, &mut destination_refs);
                                config.route_order.push(n.clone());
                                config.routes.insert(n, route);
                            }
                        }
                    }
                }
                "sources" => {
                    if let Some(t) = self.table(value, "sources") {
                        for (name, v) in t.iter() {
                            let n = name.get_ref().as_ref().to_string();
                            let key = format!("sources.{n}");
                            self.check_name(name.span().start, &key, &n);
                            if let Some(t) = self.table(v, &key)
                                && let Some(source) =
                                    self.source(&n, v.span().start, t, &key, &mut source_route_refs)
                            {
                                config.sources.insert(n, source);
                            }
                        }
                    }
                }
                "destinations" => {
                    if let Some(t) = self.table(value, "destinations") {
                        for (name, v) in t.iter() {
                            let n = name.get_ref().as_ref().to_string();
                            let key = format!("destinations.{n}");
                            self.check_name(name.span().start, &key, &n);
                            if let Some(t) = self.table(v, &key)
                                && let Some(d) = self.destination(&n, v.span().start, t, &key)
                            {
                                config.destinations.insert(n, d);
                            }
                        }
                    }
                }
                "alerts" => {
                    if let Some(t) = self.table(value, "alerts") {
                        for (name, v) in t.iter() {
                            let n = name.get_ref().as_ref().to_string();
                            let key = format!("alerts.{n}");
                            self.check_name(name.span().start, &key, &n);
                            if let Some(t) = self.table(v, &key)
                                && let Some(a) =
                                    self.alert(&n, v.span().start, t, &key, &mut alert_refs)
                            {
                                config.alerts.insert(n, a);
                            }
                        }
                    }
                }
                other => self.error(
                    key.span().start,
                    other,
                    "unknown section (expected runtime, journal, admin, trust, sources, plugins, \
                     routes, destinations or alerts)",
                ),
            }
        }
        if matches!(config.journal, super::JournalConfig::Postgres(_))
            && config.runtime.retain_max_bytes.is_some()
        {
            self.error(
                journal_at,
                "runtime.retain_max_mb",
                "a size cap is the SQLite journal's: PostgreSQL keeps deleted rows' space for \
                 new ones, so the size would not fall; with engine = \"postgres\", retain by age \
                 (runtime.retain_days)",
            );
        }
        if let Some(admin) = &mut config.admin
            && admin.tokens.as_os_str().is_empty()
        {
            admin.tokens = config.runtime.data_dir.join("admin-tokens.toml");
        }
        // Each plugin's signature policy, now that [trust] is read
        // (wherever the file puts it); a pinned signer must be a key of the
        // trust list.
        for (name, spec) in config.plugins.iter_mut() {
            spec.signing.trust = config.trust.list.clone();
            spec.signing.require_signed = config.trust.require_signed;
            spec.strict_grants = config.trust.strict_grants;
            if let Some(signer) = &spec.signing.signer
                && !config.trust.list.keys.contains_key(signer)
            {
                let at = self.signer_offsets.get(name).copied().unwrap_or(0);
                self.error(
                    at,
                    &format!("plugins.{name}.signer"),
                    match &config.trust.keys {
                        Some(f) => format!("{signer:?} is not a key of {}", f.display()),
                        None => {
                            format!("{signer:?} needs a trust list: [trust] keys = \"trust.toml\"")
                        }
                    },
                );
            }
        }
        for (offset, key, plugin) in route_refs {
            if !config.plugins.contains_key(&plugin) {
                self.error(
                    offset,
                    &key,
                    format!("no plugin named {plugin:?} is defined"),
                );
            }
        }
        for (offset, key, dest) in destination_refs {
            if !config.destinations.contains_key(&dest) {
                self.error(
                    offset,
                    &key,
                    format!("no destination named {dest:?} is defined"),
                );
            }
        }
        for (offset, key, section, name) in alert_refs {
            let known = match section {
                "sources" => config.sources.contains_key(&name),
                "routes" => config.routes.contains_key(&name),
                _ => config.destinations.contains_key(&name),
            };
            if !known {
                let what = section.trim_end_matches('s');
                self.error(offset, &key, format!("no {what} named {name:?} is defined"));
            }
        }
        for (offset, key, route) in source_route_refs {
            if !config.routes.contains_key(&route) {
                self.error(offset, &key, format!("no route named {route:?} is defined"));
            }
        }
        config
    }

    pub(super) fn check_name(&mut self, offset: usize, key: &str, name: &str) {
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !ok {
            self.error(
                offset,
                key,
                "names may only hold lower-case letters, digits, '-' and '_'",
            );
        }
    }

    pub(super) fn table<'i>(
        &mut self,
        value: &'i Spanned<DeValue<'i>>,
        key: &str,
    ) -> Option<&'i DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.error(
                    value.span().start,
                    key,
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(super) fn string(&mut self, (key, value): Entry<'_>, path: &str) -> Option<String> {
        let _ = key;
        match value.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.error(
                    value.span().start,
                    path,
                    format!("expected a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    pub(super) fn integer(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        path: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => {
                u64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
            }
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(
                    value.span().start,
                    path,
                    format!("expected a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    pub(super) fn path(
        &mut self,
        entry: Entry<'_>,
        key: &str,
        must_exist: bool,
    ) -> Option<PathBuf> {
        let s = self.string(entry, key)?;
        let p = self.base.join(&s);
        if must_exist && !p.is_file() {
            self.error(
                entry.1.span().start,
                key,
                format!("file {} does not exist", p.display()),
            );
        }
        Some(p)
    }

    pub(super) fn string_list(
        &mut self,
        v: &Spanned<DeValue<'_>>,
        key: &str,
    ) -> Vec<(usize, String)> {
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| match item.get_ref() {
                    DeValue::String(s) => Some((item.span().start, s.to_string())),
                    _ => {
                        self.error(item.span().start, key, "expected a string");
                        None
                    }
                })
                .collect(),
            _ => {
                self.error(v.span().start, key, "expected a list of strings");
                Vec::new()
            }
        }
    }

    /// The `kind` key of a source or destination table, and where its
    /// value is.
    pub(super) fn kind(
        &mut self,
        at: usize,
        t: &DeTable<'_>,
        key: &str,
        kinds: &str,
    ) -> Option<(String, usize)> {
        match t.iter().find(|(k, _)| k.get_ref().as_ref() == "kind") {
            Some(entry) => self
                .string(entry, &format!("{key}.kind"))
                .map(|k| (k, entry.1.span().start)),
            None => {
                self.error(
                    at,
                    &format!("{key}.kind"),
                    format!("required key is missing (one of: {kinds})"),
                );
                None
            }
        }
    }

    pub(super) fn socket_addr(
        &mut self,
        entry: Entry<'_>,
        key: &str,
    ) -> Option<std::net::SocketAddr> {
        let text = self.string(entry, key)?;
        match text.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    entry.1.span().start,
                    key,
                    format!("{text:?} is not an address such as 127.0.0.1:2575"),
                );
                None
            }
        }
    }
}
