//! A route's plugin chain: each output of one plugin is the input of the
//! next; the outputs of the last are what gets delivered.

use std::sync::Arc;

use crate::plugins::{CallError, Message, Output, Plugin};

/// The plugins of a route, in order.
#[derive(Clone)]
pub struct Chain {
    plugins: Vec<Arc<Plugin>>,
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
        Chain { plugins }
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
    pub fn run(&self, msg: Message) -> Result<ChainResult, CallError> {
        let mut inputs = vec![(None, msg)];
        let mut versions = Vec::with_capacity(self.plugins.len());
        for plugin in &self.plugins {
            versions.push((plugin.name().to_string(), plugin.sha256().to_string()));
            let mut next = Vec::new();
            for (destination, input) in &inputs {
                for out in plugin.call(input)? {
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
}
