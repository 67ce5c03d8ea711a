//! A route's plugin chain: each output of one plugin is the input of the
//! next; the outputs of the last are what gets delivered.

use std::sync::Arc;
use std::time::Instant;

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
    /// (plugin name, sha256) of every plugin the message went through.
    pub versions: Vec<(String, String)>,
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

    /// (plugin, sha256) of each plugin, in order.
    pub fn versions(&self) -> Vec<(String, String)> {
        self.plugins
            .iter()
            .map(|p| (p.name().to_string(), p.sha256().to_string()))
            .collect()
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
            versions.push((plugin.name().to_string(), plugin.sha256().to_string()));
            let deadline = Instant::now() + plugin.spec().limits.deadline;
            let mut tally = Tally::default();
            let mut next = Vec::new();
            for (destination, input) in &inputs {
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
            inputs = next;
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
