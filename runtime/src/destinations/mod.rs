//! Destinations: where outputs are delivered. Each kind is one file behind
//! [`Destination`]; a delivery either succeeds, fails for now (retried with
//! backoff) or fails for good.

pub mod dir_sync;
pub mod dispatch;
pub mod file;
pub mod http;
pub mod mllp;
pub mod set;

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use crate::config::{DestinationConfig, DestinationKind};
use crate::plugins::Output;

/// One output on its way to one destination.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The delivery's number in the journal (grows with each delivery).
    pub seq: i64,
    /// The runtime's id of the message the output was made from.
    pub message_id: String,
    /// MSH-10 of that message (empty for non-HL7 input).
    pub control_id: String,
    /// MSH-9 of that message, e.g. `ADT^A01`.
    pub message_type: String,
    /// The output's position among its message's outputs, from 1.
    pub n: usize,
    /// When the message was received.
    pub received: SystemTime,
    /// The output.
    pub output: Output,
}

/// Why a delivery did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// May succeed later: retried with backoff.
    #[error("{0}")]
    Transient(String),
    /// The receiver asked to wait this long (HTTP `Retry-After`).
    #[error("{reason} (retry after {} s)", after.as_secs())]
    Throttled {
        /// What it said.
        reason: String,
        /// How long it asked to wait.
        after: std::time::Duration,
    },
    /// Will not succeed as it is: reported, not retried.
    #[error("{0}")]
    Permanent(String),
}

/// A boxed future, so destinations can sit behind `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A place outputs are delivered to.
pub trait Destination: Send + Sync {
    /// Delivers one output. Called again with the same delivery after a
    /// transient error, so it must be safe to repeat.
    fn deliver<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<(), DeliveryError>>;

    /// Most deliveries [`Destination::deliver_batch`] takes at once; 1
    /// (the default): one at a time.
    fn max_batch(&self) -> usize {
        1
    }

    /// Delivers several outputs, made durable together where the
    /// transport allows: one result per delivery, in order. By default,
    /// each in turn with [`Destination::deliver`].
    fn deliver_batch<'a>(
        &'a self,
        batch: &'a [Delivery],
    ) -> BoxFuture<'a, Vec<Result<(), DeliveryError>>> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(batch.len());
            for d in batch {
                results.push(self.deliver(d).await);
            }
            results
        })
    }
}

/// Builds the destination a config describes.
pub fn build(config: &DestinationConfig) -> Box<dyn Destination> {
    match &config.kind {
        DestinationKind::File(f) => Box::new(file::FileDestination::new(f.clone())),
        DestinationKind::Http(h) => Box::new(http::HttpDestination::new(h.clone())),
        DestinationKind::Mllp(m) => Box::new(mllp::MllpDestination::new(m.clone())),
    }
}
