//! One connection to the server that comes back by itself: used while it
//! works, dropped when the server or the network breaks it, made again at
//! the next use. So a node rides out a PostgreSQL restart without a
//! restart of its own: the writes and reads in between fail (and say so),
//! the ones after work.

use postgres::Client;

use super::connect;

/// A connection that reconnects on its next use once broken.
pub(super) struct Conn {
    url: String,
    read_only: bool,
    client: Option<Client>,
}

impl Conn {
    /// A connection to `url` (read-only sessions if `read_only`), made
    /// now (a wrong URL fails here, at start).
    pub(super) fn open(url: &str, read_only: bool) -> Result<Conn, String> {
        Ok(Conn {
            url: url.to_string(),
            read_only,
            client: Some(connect(url, read_only)?),
        })
    }

    /// Runs `f` on the connection, connecting first if it was broken. An
    /// error is said in one line: the server's own message when it sent
    /// one.
    pub(super) fn with<T: Send>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, String> {
        outside_runtime(|| self.with_here(f)).unwrap_or_else(Err)
    }

    fn with_here<T>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, String> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(connect(&self.url, self.read_only)?);
        }
        let Some(client) = self.client.as_mut() else {
            return Err("not connected".into());
        };
        let result = f(client).map_err(|e| describe(&e));
        if client.is_closed() {
            self.client = None;
        }
        result
    }

    /// Whether the last use found the connection broken.
    pub(super) fn is_down(&self) -> bool {
        self.client.is_none()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The client says goodbye to the server as it drops, blocking.
        if let Some(client) = self.client.take() {
            let _ = outside_runtime(move || drop(client));
        }
    }
}

/// An error in one line: the server's message (and its SQLSTATE) when it
/// sent one, the client's otherwise.
pub(super) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Runs `f` where the synchronous client may block: on this thread, or,
/// when this thread belongs to a tokio runtime (where the client's own
/// `block_on` would panic), on a scoped thread of its own. So the journal
/// can be called from anywhere, as the SQLite one can.
pub(super) fn outside_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, String> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(f());
    }
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .map_err(|_| "the journal's database call panicked".to_string())
    })
}
