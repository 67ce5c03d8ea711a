//! A listener's cap on open connections: each accepted connection holds a
//! permit while it is open; one past the cap is closed at once, and that
//! is logged at most once a minute per listener.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The open connections a listener allows.
pub struct ConnectionCap {
    name: String,
    max: usize,
    permits: Arc<Semaphore>,
    warned: Mutex<Option<Instant>>,
}

impl ConnectionCap {
    /// At most `max` connections open at once on listener `name`.
    pub fn new(name: &str, max: usize) -> ConnectionCap {
        ConnectionCap {
            name: name.to_string(),
            max,
            permits: Arc::new(Semaphore::new(max)),
            warned: Mutex::new(None),
        }
    }

    /// A permit for a connection just accepted from `remote`, held while it
    /// is open; `None` when the listener is full (close the connection).
    pub fn admit(&self, remote: SocketAddr) -> Option<OwnedSemaphorePermit> {
        match self.permits.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                let now = Instant::now();
                let due = self.warned.lock().is_ok_and(|mut w| {
                    let due = w.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60));
                    if due {
                        *w = Some(now);
                    }
                    due
                });
                if due {
                    tracing::warn!(listener = %self.name, %remote, max = self.max, "connection refused: the listener has its maximum of open connections (max_connections; logged once a minute)");
                } else {
                    tracing::debug!(listener = %self.name, %remote, "connection refused: listener full");
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_and_frees() {
        let cap = ConnectionCap::new("t", 2);
        let remote: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let a = cap.admit(remote).unwrap();
        let _b = cap.admit(remote).unwrap();
        assert!(cap.admit(remote).is_none());
        drop(a);
        assert!(cap.admit(remote).is_some());
    }
}
