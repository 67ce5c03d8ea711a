//! Routing: which route a message takes (the source's own, else the first
//! whose `match` patterns take its MSH-9), and a route's plugin chain, where
//! each output of one plugin is the input of the next and the outputs of the
//! last are what gets delivered.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::journal::PluginUse;

use crate::plugins::plugin::Tally;
use crate::plugins::text;
use crate::plugins::{CallError, Message, Output, Plugin};

/// The plugins of a route, in order.
#[derive(Clone)]
pub struct Chain {
    plugins: Vec<Arc<Plugin>>,
    /// The route's name and destinations, when outputs must name one of
    /// them.
    route: Option<(String, Vec<String>)>,
}

/// The outputs of a chain, with the versions of the plugins that made them.
#[derive(Debug)]
pub struct ChainResult {
    /// What the last plugin produced.
    pub outputs: Vec<Output>,
    /// Every plugin version the message went through, with its signer.
    pub versions: Vec<PluginUse>,
}

impl Chain {
    /// A chain of these plugins.
    pub fn new(plugins: Vec<Arc<Plugin>>) -> Chain {
        Chain {
            plugins,
            route: None,
        }
    }

    /// The chain of route `route`, whose outputs may only name one of its
    /// `destinations`: a plugin naming another fails the message.
    pub fn of_route(mut self, route: &str, destinations: &[String]) -> Chain {
        self.route = Some((route.to_string(), destinations.to_vec()));
        self
    }

    /// Each plugin's version and signer, in order.
    pub fn versions(&self) -> Vec<PluginUse> {
        self.plugins.iter().map(|p| p.record().clone()).collect()
    }

    /// Runs `msg` through every plugin. An intermediate output keeps the
    /// original message id and headers (plus its own headers); a destination
    /// named by an intermediate plugin is carried to the outputs made from it
    /// unless a later plugin names another. The first error stops the chain.
    ///
    /// A plugin's limits hold per message, not per call: when an earlier
    /// plugin fans the message out, the calls of the next one share its
    /// deadline, and what they produce together is held to its output caps.
    pub fn run(&self, msg: Message) -> Result<ChainResult, CallError> {
        let mut inputs = vec![(None, msg)];
        let mut versions = Vec::with_capacity(self.plugins.len());
        for plugin in &self.plugins {
            versions.push(plugin.record().clone());
            let started = Instant::now();
            let step = self.step(plugin, &inputs, started + plugin.spec().limits.deadline);
            if let Some((route, _)) = &self.route {
                let (outcome, limit) = match &step {
                    Ok(_) => ("transformed", None),
                    Err(CallError::Limit { limit, .. }) => ("limit", Some(limit.kind())),
                    Err(e) => (e.outcome(), None),
                };
                let took = started.elapsed();
                crate::metrics::metrics().plugin(route, plugin.name(), took, outcome, limit);
                crate::activity::activity().plugin_call(plugin.name(), step.is_ok(), took);
            }
            inputs = step?;
        }
        Ok(ChainResult {
            outputs: inputs
                .into_iter()
                .map(|(destination, message)| Output {
                    destination,
                    message,
                })
                .collect(),
            versions,
        })
    }

    /// One plugin's work on one message: each input through it (an earlier
    /// plugin may have fanned the message out), all of them under one
    /// `deadline` and its output caps together.
    fn step(
        &self,
        plugin: &Plugin,
        inputs: &[(Option<String>, Message)],
        deadline: Instant,
    ) -> Result<Vec<(Option<String>, Message)>, CallError> {
        let mut tally = Tally::default();
        let mut next = Vec::new();
        for (destination, input) in inputs {
            let (outputs, this_call) = plugin.call_tallied(input, deadline)?;
            tally.add(this_call);
            tally
                .check(&plugin.spec().limits)
                .map_err(|limit| CallError::Limit {
                    plugin: plugin.name().to_string(),
                    limit,
                })?;
            self.check_destinations(plugin, &outputs)?;
            for out in outputs {
                let mut headers = input.headers.clone();
                headers.extend(out.message.headers);
                next.push((
                    out.destination.or_else(|| destination.clone()),
                    Message {
                        id: input.id.clone(),
                        content_type: out.message.content_type,
                        body: out.message.body,
                        headers,
                    },
                ));
            }
        }
        Ok(next)
    }

    /// Fails the message when an output names a destination its route does
    /// not have. The names are the plugin's own text (it could put anything
    /// there): the reason counts them, only the debug log shows them.
    fn check_destinations(&self, plugin: &Plugin, outputs: &[Output]) -> Result<(), CallError> {
        let Some((route, allowed)) = &self.route else {
            return Ok(());
        };
        let unknown: Vec<&str> = outputs
            .iter()
            .filter_map(|o| o.destination.as_deref())
            .filter(|d| !allowed.iter().any(|a| a == d))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        for name in unknown.iter().take(10) {
            tracing::debug!(plugin = plugin.name(), route, destination = %text::escape(&text::cap(name, 256)), "unknown destination");
        }
        Err(CallError::Failed {
            plugin: plugin.name().to_string(),
            reason: format!(
                "{} of its outputs name a destination that route {route} does not have",
                unknown.len()
            ),
        })
    }
}

/// A route, ready to run.
pub struct Route {
    /// Its name.
    pub name: String,
    /// Its plugins, in order.
    pub(crate) chain: Chain,
    /// MSH-9 patterns that send a message here when its source names no
    /// route.
    patterns: Vec<String>,
    /// Its destinations.
    pub(crate) destinations: Vec<String>,
    /// A shadow per plugin of the route that has a candidate version.
    pub(crate) shadows: Vec<crate::shadow::Shadow>,
}

impl Route {
    /// Each plugin of the route's chain, its version and signer, in order.
    pub fn versions(&self) -> Vec<PluginUse> {
        self.chain.versions()
    }

    /// Runs `msg` through the route's plugins (see [`Chain::run`]).
    pub fn run(&self, msg: Message) -> Result<ChainResult, CallError> {
        self.chain.run(msg)
    }
}

/// Every route, built over one set of plugin versions. The pipeline holds
/// the live one behind an atomic pointer: a hot reload builds a new one and
/// swaps it in; a message uses the routing that is live when a worker picks
/// it up, to its end.
pub struct Routing {
    routes: HashMap<String, Arc<Route>>,
    order: Vec<Arc<Route>>,
}

impl Routing {
    /// Builds the routes of `config` over `plugins` (which must hold every
    /// plugin a route names).
    pub fn build(
        config: &Config,
        plugins: &BTreeMap<String, Arc<Plugin>>,
    ) -> Result<Routing, RoutingError> {
        let mut routes = HashMap::new();
        let mut order = Vec::new();
        for name in &config.route_order {
            let rc = &config.routes[name];
            if rc.destinations.is_empty() {
                return Err(RoutingError::NoDestinations(name.clone()));
            }
            let mut chain = Vec::new();
            for p in &rc.plugins {
                match plugins.get(p) {
                    Some(plugin) => chain.push(plugin.clone()),
                    None => return Err(RoutingError::MissingPlugin(name.clone(), p.clone())),
                }
            }
            // Each candidate in its plugin's place, in a chain of its own
            // (no metrics, no destinations: its outputs go nowhere).
            let mut shadows = Vec::new();
            for (i, p) in rc.plugins.iter().enumerate() {
                let Some(spec) = config.plugins.get(p).filter(|s| s.candidate.is_some()) else {
                    continue;
                };
                let Some(candidate) =
                    plugins.get(&format!("{p}{}", crate::config::CANDIDATE_SUFFIX))
                else {
                    continue;
                };
                let mut with = chain.clone();
                with[i] = candidate.clone();
                shadows.push(crate::shadow::Shadow {
                    plugin: p.clone(),
                    share: spec.candidate_share,
                    chain: Chain::new(with),
                    stats: crate::shadow::stats(p, candidate.sha256()),
                });
            }
            let route = Arc::new(Route {
                name: name.clone(),
                shadows,
                chain: Chain::new(chain).of_route(name, &rc.destinations),
                patterns: rc.matches.clone(),
                destinations: rc.destinations.clone(),
            });
            routes.insert(name.clone(), route.clone());
            order.push(route);
        }
        Ok(Routing { routes, order })
    }

    /// The route named `name`, if this routing has it.
    pub fn get(&self, name: &str) -> Option<Arc<Route>> {
        self.routes.get(name).cloned()
    }

    /// The route for a message: the source's own, else the first route
    /// (in file order) whose `match` patterns take the message type.
    pub fn route_for(&self, source_route: Option<&str>, message_type: &str) -> Option<Arc<Route>> {
        match source_route {
            Some(name) => self.routes.get(name).cloned(),
            None => self
                .order
                .iter()
                .find(|r| r.patterns.iter().any(|p| glob(p, message_type)))
                .cloned(),
        }
    }
}

/// A configuration whose routes cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// A route names a plugin that is not loaded.
    #[error("route {0}: plugin {1} is not loaded")]
    MissingPlugin(String, String),
    /// A route has no destination, so its outputs would go nowhere.
    #[error("route {0}: no destinations: its outputs would be lost (add destinations = [...])")]
    NoDestinations(String),
}

/// Matches `text` against a pattern with `*` (any run) and `?` (one char).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns() {
        assert!(glob("ADT^A0*", "ADT^A01"));
        assert!(glob("ADT^*", "ADT^A40"));
        assert!(glob("*", "ORU^R01"));
        assert!(glob("OR?^R01", "ORU^R01"));
        assert!(!glob("ADT^A0*", "ADT^A11"));
        assert!(!glob("ORU^R01", "ORU^R011"));
    }
}
