//! One connection to the server that comes back by itself: used while it
//! works, dropped when the server or the network breaks it, made again at
//! the next use. So a node rides out a PostgreSQL restart without a
//! restart of its own: the writes and reads in between fail (and say so),
//! the ones after work.

use postgres::Client;

use super::Server;

/// A connection that reconnects on its next use once broken.
pub(super) struct Conn {
    server: Server,
    read_only: bool,
    client: Option<Client>,
}

impl Conn {
    /// A connection to `server` (read-only sessions if `read_only`), made
    /// now (a wrong URL fails here, at start).
    pub(super) fn open(server: &Server, read_only: bool) -> Result<Conn, String> {
        Ok(Conn {
            server: server.clone(),
            read_only,
            client: Some(server.connect(read_only)?),
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
            self.client = Some(self.server.connect(self.read_only)?);
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
/// sent one, the client's otherwise with its causes (a TLS handshake's
/// says which certificate check failed).
pub(super) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut said = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !said.contains(&text) {
            said.push_str(": ");
            said.push_str(&text);
        }
        cause = c.source();
    }
    said
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
