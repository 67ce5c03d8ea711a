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
    client: Option<Client>,
}

impl Conn {
    /// A connection to `url`, made now (a wrong URL fails here, at start).
    pub(super) fn open(url: &str) -> Result<Conn, postgres::Error> {
        Ok(Conn {
            url: url.to_string(),
            client: Some(connect(url)?),
        })
    }

    /// Runs `f` on the connection, connecting first if it was broken. An
    /// error is said in one line: the server's own message when it sent
    /// one.
    pub(super) fn with<T>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, String> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(connect(&self.url).map_err(|e| describe(&e))?);
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

/// An error in one line: the server's message (and its SQLSTATE) when it
/// sent one, the client's otherwise.
pub(super) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}
