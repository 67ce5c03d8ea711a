//! A warning about a peer that is logged once per peer address every ten
//! minutes (at debug otherwise), so a misconfigured or hostile client
//! cannot flood the log.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one peer's warning is logged.
const EVERY: Duration = Duration::from_secs(600);

/// Peers remembered; past this the memory starts over.
const REMEMBERED: usize = 4096;

/// The peers warned about lately, for one kind of warning.
#[derive(Default)]
pub struct PeerLog(Mutex<HashMap<IpAddr, Instant>>);

impl PeerLog {
    /// Whether a warning about `remote` is due now (and notes that it was
    /// given).
    pub fn due(&self, remote: SocketAddr) -> bool {
        let now = Instant::now();
        let Ok(mut seen) = self.0.lock() else {
            return false;
        };
        if seen.len() > REMEMBERED {
            seen.clear();
        }
        let due = seen
            .get(&remote.ip())
            .is_none_or(|t| now.duration_since(*t) > EVERY);
        if due {
            seen.insert(remote.ip(), now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_peer() {
        let log = PeerLog::default();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:1".parse().unwrap();
        assert!(log.due(a));
        assert!(
            !log.due("127.0.0.1:2".parse().unwrap()),
            "same address, other port"
        );
        assert!(log.due(b));
    }
}
