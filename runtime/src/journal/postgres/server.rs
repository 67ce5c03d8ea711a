//! Where the PostgreSQL server is and how to reach it: the URL, TLS when
//! the configuration asks for it, and the one way every connection of the
//! engine is made.

use std::sync::Arc;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::tls::MakeTlsConnect;
use postgres::{Client, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::conn;
use crate::journal::JournalError;

/// How long a connection attempt may take before it is given up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A server to connect to: cheap to clone (one per connection).
#[derive(Clone)]
pub struct Server {
    url: String,
    tls: Option<Tls>,
}

/// TLS to the server: rustls with the configured CAs (or the system's),
/// the server's certificate checked against its host name or the
/// configured `server_name`.
#[derive(Clone)]
struct Tls {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<String>,
}

impl Server {
    /// The server of a `[journal] engine = "postgres"` configuration. A
    /// TLS setting that does not load (a CA file that is not PEM, a key
    /// that does not match) is an error naming it.
    pub fn for_config(pg: &weft_config::PostgresJournal) -> Result<Server, JournalError> {
        let tls = match &pg.tls {
            None => None,
            Some(t) => Some(Tls {
                config: weft_tls::client_config(t).map_err(|e| JournalError::Open {
                    path: redact(&pg.url),
                    reason: format!("journal.tls: {e}"),
                })?,
                server_name: t.server_name.clone(),
            }),
        };
        Ok(Server {
            url: pg.url.clone(),
            tls,
        })
    }

    /// The URL without its password, for operators and errors.
    pub fn location(&self) -> String {
        redact(&self.url)
    }

    /// Whether connections go over TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A new session (read-only in every transaction if `read_only`), its
    /// commits durable before they return (`synchronous_commit = on`). An
    /// error is said in one line.
    pub(super) fn connect(&self, read_only: bool) -> Result<Client, String> {
        conn::outside_runtime(|| self.connect_here(read_only).map_err(|e| conn::describe(&e)))
            .and_then(|r| r)
    }

    fn connect_here(&self, read_only: bool) -> Result<Client, postgres::Error> {
        let mut config: postgres::Config = self.url.parse()?;
        config.application_name("weft");
        if read_only {
            // Every transaction of the session, whatever it runs.
            config.options("-c default_transaction_read_only=on");
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        let mut client = match &self.tls {
            // The configuration refuses a URL whose sslmode asks for TLS
            // without journal.tls; what is left is said here once.
            None => config.ssl_mode(SslMode::Disable).connect(NoTls)?,
            Some(tls) => config.ssl_mode(SslMode::Require).connect(Named {
                inner: MakeRustlsConnect::new((*tls.config).clone()),
                server_name: tls.server_name.clone(),
            })?,
        };
        // ACK after COMMIT: the commit is durable on the server before any
        // sender hears of it, whatever the server's default.
        client.batch_execute("SET synchronous_commit = on")?;
        Ok(client)
    }
}

/// A bare URL: plain TCP (the tests' servers, and callers that hold no
/// configuration).
impl From<&str> for Server {
    fn from(url: &str) -> Server {
        Server {
            url: url.to_string(),
            tls: None,
        }
    }
}

impl From<&String> for Server {
    fn from(url: &String) -> Server {
        Server::from(url.as_str())
    }
}

/// The rustls connector, checking the certificate against `server_name`
/// when one is configured (a server reached by address, or through a name
/// its certificate does not carry), else against the URL's host.
struct Named {
    inner: MakeRustlsConnect,
    server_name: Option<String>,
}

impl MakeTlsConnect<Socket> for Named {
    type Stream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        let name = self.server_name.as_deref().unwrap_or(domain);
        <MakeRustlsConnect as MakeTlsConnect<Socket>>::make_tls_connect(&mut self.inner, name)
    }
}

/// The URL without its password, for operators and errors.
pub fn redact(url: &str) -> String {
    match url.parse::<postgres::Config>() {
        Ok(c) => {
            let host = c
                .get_hosts()
                .first()
                .map(|h| match h {
                    postgres::config::Host::Tcp(name) => name.clone(),
                    postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .unwrap_or_default();
            let port = c.get_ports().first().copied().unwrap_or(5432);
            format!(
                "postgres://{}@{host}:{port}/{}",
                c.get_user().unwrap_or(""),
                c.get_dbname().unwrap_or("")
            )
        }
        Err(_) => "postgres://(a URL that does not parse)".into(),
    }
}
