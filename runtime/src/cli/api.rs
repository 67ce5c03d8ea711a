//! The command line as a client of the admin API: where the API is, the
//! token it sends (`WEFT_ADMIN_TOKEN`, else the `data_dir/admin.token` a
//! first `weft run` wrote) and, when `[admin]` has `tls`, HTTPS that
//! trusts the API's own certificate chain (or `--tls-ca`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// How to reach the admin API, as options of a subcommand.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The admin API's address (default: `[admin] listen` of the configuration).
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// The CA (PEM) to verify the admin API's certificate with (default: the
    /// certificate file of `[admin] tls`).
    #[arg(long = "admin-ca", value_name = "FILE")]
    admin_ca: Option<PathBuf>,
}

/// The admin API, ready to be asked.
pub struct Api {
    addr: SocketAddr,
    base: String,
    token: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// The environment variable holding a token, before `data_dir/admin.token`.
pub const TOKEN_ENV: &str = "WEFT_ADMIN_TOKEN";

impl Api {
    /// The API of `config` (or of `--admin`), with its token and trust.
    pub fn new(args: &ApiArgs, config: &weft::config::Config) -> anyhow::Result<Api> {
        let admin = config.admin.as_ref();
        let addr = match (args.admin, admin) {
            (Some(a), _) => a,
            (None, Some(a)) => a.listen,
            (None, None) => bail!(
                "{}: no [admin] section: this command asks the running weft through its admin API (or give --admin HOST:PORT)",
                config.source
            ),
        };
        let addr = reachable(addr);
        let token = token(&config.runtime.data_dir)?;
        let server_tls = admin.and_then(|a| a.tls.as_ref());
        let tls_config = match (server_tls, &args.admin_ca) {
            (None, None) => weft::tls::plain_only_client_config(),
            (t, ca) => {
                let ca = ca.clone().or_else(|| t.map(|t| t.cert.clone()));
                weft::tls::client_config(&weft::tls::ClientTls {
                    ca,
                    ..Default::default()
                })
                .context("admin API: TLS")?
            }
        };
        let https = server_tls.is_some() || args.admin_ca.is_some();
        let name = weft::tls::server_name(&weft::tls::ClientTls::default(), &addr.to_string())
            .context("admin API: TLS")?;
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config((*tls_config).clone())
            .https_or_http()
            .with_server_name_resolver(FixedServerNameResolver::new(name))
            .enable_http1()
            .build();
        Ok(Api {
            addr,
            base: format!("{}://{addr}", if https { "https" } else { "http" }),
            token,
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// `method path` with a JSON `body` (empty for none): the answer's JSON,
    /// or the API's reason for refusing.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let addr = self.addr;
        let req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(
                body.map(Value::to_string).unwrap_or_default(),
            )))
            .context("building the request")?;
        let resp = self
            .client
            .request(req)
            .await
            .with_context(|| format!("admin API at {addr}: is `weft run` running?"))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .with_context(|| format!("admin API at {addr}: reading the answer"))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&body).with_context(|| {
            format!("admin API at {addr}: {method} {path}: not JSON ({status})")
        })?;
        if !status.is_success() {
            bail!(
                "admin API at {addr}: {method} {path}: {status}: {}",
                value["error"].as_str().unwrap_or_default()
            );
        }
        Ok(value)
    }
}

/// A listen address as a client on this machine reaches it: a wildcard
/// address on loopback.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// The token to send: `WEFT_ADMIN_TOKEN`, else `data_dir/admin.token`.
fn token(data_dir: &std::path::Path) -> anyhow::Result<String> {
    if let Ok(t) = std::env::var(TOKEN_ENV)
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let path = weft::admin::tokens::local_token_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        Ok(_) => bail!("{} is empty", path.display()),
        Err(e) => bail!(
            "no admin token: set {TOKEN_ENV}, or let a first `weft run` write {} ({e})",
            path.display()
        ),
    }
}
