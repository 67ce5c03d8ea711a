//! The HTTP destination: POST (or PUT) each output to a URL, for example a
//! FHIR server's base URL for a transaction Bundle.
//!
//! 2xx is delivered; 408, 429, 5xx, timeouts and connection errors are
//! retried (honouring `Retry-After`); any other status fails for good, and
//! the response body is logged at debug level (it may echo patient data).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{BoxFuture, Delivery, DeliveryError, Destination};
use crate::config::{HttpDestinationConfig, HttpMethod};

/// The most of a response body read; the rest is not waited for.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Most bytes of an error response kept for the log.
const KEEP_BODY: usize = 4096;

/// Sends outputs over HTTP or HTTPS, keeping connections open between
/// requests.
pub struct HttpDestination {
    config: HttpDestinationConfig,
    /// The client, or why its TLS settings could not be used (each delivery
    /// then fails with that reason and stays pending).
    client: Result<Client<HttpsConnector<HttpConnector>, Full<Bytes>>, String>,
}

impl HttpDestination {
    /// A destination for these settings: HTTPS trusts the `tls` CA (else
    /// the system's) and presents its client certificate when set.
    pub fn new(config: HttpDestinationConfig) -> HttpDestination {
        let client = (|| {
            let tls = config.tls.clone().unwrap_or_default();
            let tls_config = if config.url.scheme_str() == Some("https") {
                crate::tls::client_config(&tls).map_err(|e| e.to_string())?
            } else {
                crate::tls::plain_only_client_config()
            };
            let mut builder = HttpsConnectorBuilder::new()
                .with_tls_config((*tls_config).clone())
                .https_or_http();
            if let Some(name) = &tls.server_name {
                let name = crate::tls::server_name(&tls, name).map_err(|e| e.to_string())?;
                builder = builder.with_server_name_resolver(FixedServerNameResolver::new(name));
            }
            Ok(Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(builder.enable_http1().build()))
        })();
        HttpDestination { config, client }
    }

    fn request(&self, d: &Delivery) -> Result<http::Request<Full<Bytes>>, DeliveryError> {
        let method = match self.config.method {
            HttpMethod::Post => http::Method::POST,
            HttpMethod::Put => http::Method::PUT,
        };
        let mut req = http::Request::builder()
            .method(method)
            .uri(self.config.url.clone())
            .header(
                http::header::CONTENT_TYPE,
                d.output.message.content_type.as_str(),
            )
            .header("x-weft-message-id", d.message_id.as_str());
        for (name, value) in &self.config.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        req.body(Full::new(Bytes::from(d.output.message.body.clone())))
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the request: {e}")))
    }
}

impl Destination for HttpDestination {
    fn deliver<'a>(&'a self, d: &'a Delivery) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let req = self.request(d)?;
            let client = self
                .client
                .as_ref()
                .map_err(|r| DeliveryError::Transient(format!("TLS settings: {r}")))?;
            let exchange = async {
                let resp = client.request(req).await.map_err(|e| {
                    DeliveryError::Transient(format!("request to {} failed: {e}", self.config.url))
                })?;
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                // A receiver cannot make Weft hold more than this of its
                // answer (which only ever reaches the debug log).
                let body = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                Ok::<_, DeliveryError>((status, retry_after, body))
            };
            let (status, retry_after, body) = tokio::time::timeout(self.config.timeout, exchange)
                .await
                .map_err(|_| {
                    DeliveryError::Transient(format!(
                        "no response from {} within {} s",
                        self.config.url,
                        self.config.timeout.as_secs()
                    ))
                })??;
            if status.is_success() {
                return Ok(());
            }
            let kept = &body[..body.len().min(KEEP_BODY)];
            tracing::debug!(
                message_id = %d.message_id,
                status = status.as_u16(),
                body = %String::from_utf8_lossy(kept),
                "HTTP destination answered with an error"
            );
            let reason = format!(
                "{} answered {status} ({} byte body, logged at debug level)",
                self.config.url,
                body.len()
            );
            let retryable = status == http::StatusCode::REQUEST_TIMEOUT
                || status == http::StatusCode::TOO_MANY_REQUESTS
                || status.is_server_error();
            match (retryable, retry_after) {
                (true, Some(after)) => Err(DeliveryError::Throttled { reason, after }),
                (true, None) => Err(DeliveryError::Transient(reason)),
                (false, _) => Err(DeliveryError::Permanent(reason)),
            }
        })
    }
}
