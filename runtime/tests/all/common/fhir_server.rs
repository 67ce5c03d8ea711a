//! A small HTTP server standing in for a FHIR server: records what it is
//! sent, and answers with the statuses the test scripts.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// One request the server took.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub content_type: String,
    pub authorization: String,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

/// The running server.
pub struct FhirServer {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer with, in order; 200 once empty. A status of 503
    /// is sent with `Retry-After` (seconds, default 1).
    pub script: Arc<Mutex<VecDeque<u16>>>,
    /// The `Retry-After` sent with a 503, in seconds.
    pub retry_after: Arc<std::sync::atomic::AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FhirServer {
    /// Starts on a free port.
    pub fn start(script: &[u16]) -> FhirServer {
        Self::start_on("127.0.0.1:0".parse().unwrap(), script)
    }

    /// Starts on a given address.
    pub fn start_on(addr: SocketAddr, script: &[u16]) -> FhirServer {
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(
            script.iter().copied().collect::<VecDeque<u16>>(),
        ));
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let retry_after = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let (rec, scr, ra) = (received.clone(), script.clone(), retry_after.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    tokio::select! {
                        Ok((stream, _)) = listener.accept() => {
                            let (rec, scr, ra) = (rec.clone(), scr.clone(), ra.clone());
                            tokio::spawn(async move {
                                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                                    let (rec, scr, ra) = (rec.clone(), scr.clone(), ra.clone());
                                    async move {
                                        let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                                        let (method, content_type, authorization) = (req.method().to_string(), h("content-type"), h("authorization"));
                                        let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                                        let status = scr.lock().unwrap().pop_front().unwrap_or(200);
                                        rec.lock().unwrap().push(Received { method, content_type, authorization, body, status, at: std::time::Instant::now() });
                                        let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"{\"resourceType\":\"Bundle\",\"type\":\"transaction-response\"}")));
                                        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                                        if status == 503 {
                                            let secs = ra.load(std::sync::atomic::Ordering::Relaxed);
                                            resp.headers_mut().insert("retry-after", hyper::header::HeaderValue::from(secs));
                                        }
                                        Ok::<_, Infallible>(resp)
                                    }
                                });
                                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                            });
                        }
                        _ = &mut stop_rx => break,
                    }
                }
            });
        });
        let addr = addr_rx.recv().unwrap();
        FhirServer {
            addr,
            received,
            script,
            retry_after,
            stop: Some(stop_tx),
        }
    }

    /// Requests answered with a 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.status < 300)
            .cloned()
            .collect()
    }

    /// All requests so far.
    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for FhirServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A free loopback port (bound, then released).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// The control id and patient of a delivered Bundle (the given name holds
/// the control id; the MRN comes back with the site's prefix).
pub fn control_id_and_mrn(body: &[u8]) -> (String, String) {
    let b: serde_json::Value = serde_json::from_slice(body).unwrap();
    let patient = &b["entry"][0]["resource"];
    let mrn = patient["identifier"][0]["value"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("EDGE-")
        .to_string();
    let ctrl = patient["name"][0]["given"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (ctrl, mrn)
}
