//! A Lambda Runtime API endpoint for tests: the protocol a function's runtime speaks to Lambda
//! (`GET /2018-06-01/runtime/invocation/next`, `POST …/invocation/<id>/response` and
//! `…/error`, `POST …/runtime/init/error`), serving queued events and recording every answer,
//! so that a test starts a function's real binary as Lambda would and reads what it reported.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

/// What a function reported to the Runtime API.
#[derive(Debug, Clone, PartialEq)]
pub enum Reported {
    /// A response to invocation `id`.
    Response {
        /// The invocation.
        id: String,
        /// The function's output.
        body: Value,
    },
    /// An error of invocation `id`: `errorType`, `errorMessage`.
    Error {
        /// The invocation.
        id: String,
        /// The error document.
        body: Value,
    },
    /// An error at initialisation, before any invocation.
    InitError(Value),
}

#[derive(Debug, Default)]
struct Shared {
    events: VecDeque<Value>,
    reported: Vec<Reported>,
    next_calls: usize,
    served: usize,
}

/// A running Runtime API on a free loopback port.
pub struct RuntimeApi {
    address: std::net::SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

async fn handle(shared: Arc<Mutex<Shared>>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_string();
    let body = request.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    let document: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if path == "/2018-06-01/runtime/invocation/next" {
        // Long-poll as Lambda does: wait for an event.
        loop {
            let event = {
                let Ok(mut shared) = shared.lock() else {
                    return Ok(reply(StatusCode::INTERNAL_SERVER_ERROR, String::new()));
                };
                shared.next_calls += 1;
                let event = shared.events.pop_front();
                if event.is_some() {
                    shared.served += 1;
                }
                event.map(|event| (event, shared.served))
            };
            if let Some((event, served)) = event {
                let mut response = reply(StatusCode::OK, event.to_string());
                let headers = response.headers_mut();
                let id = format!("request-{served}");
                let deadline = (chrono::Utc::now().timestamp_millis() + 900_000).to_string();
                for (name, value) in [
                    ("lambda-runtime-aws-request-id", id.as_str()),
                    ("lambda-runtime-deadline-ms", deadline.as_str()),
                    ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:000000000000:function:test"),
                    ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000"),
                ] {
                    if let Ok(value) = hyper::header::HeaderValue::from_str(value) {
                        headers.insert(name, value);
                    }
                }
                return Ok(response);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let reported = if path == "/2018-06-01/runtime/init/error" {
        Some(Reported::InitError(document))
    } else if let Some(rest) = path.strip_prefix("/2018-06-01/runtime/invocation/") {
        match rest.rsplit_once('/') {
            Some((id, "response")) => Some(Reported::Response { id: id.to_string(), body: document }),
            Some((id, "error")) => Some(Reported::Error { id: id.to_string(), body: document }),
            _ => None,
        }
    } else {
        None
    };
    match (reported, shared.lock()) {
        (Some(reported), Ok(mut shared)) => {
            shared.reported.push(reported);
            Ok(reply(StatusCode::ACCEPTED, "{\"status\":\"OK\"}".to_string()))
        }
        _ => Ok(reply(StatusCode::NOT_FOUND, String::new())),
    }
}

impl RuntimeApi {
    /// Starts the endpoint.
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = shared.clone();
        tokio::spawn(async move {
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(_) => continue,
                    },
                    _ = &mut stopped => break,
                };
                let shared = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| handle(shared.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Ok(RuntimeApi { address, shared, stop: Some(stop) })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Queues an event for the next `invocation/next`.
    pub fn push(&self, event: Value) {
        if let Ok(mut shared) = self.shared.lock() {
            shared.events.push_back(event);
        }
    }

    /// What the function reported so far.
    pub fn reported(&self) -> Vec<Reported> {
        self.shared.lock().map(|shared| shared.reported.clone()).unwrap_or_default()
    }

    /// How many times the function asked for an event (it is ready once it asked).
    pub fn next_calls(&self) -> usize {
        self.shared.lock().map(|shared| shared.next_calls).unwrap_or_default()
    }

    /// Waits until the function reported `count` answers, or `timeout` passed.
    pub async fn wait_for(&self, count: usize, timeout: std::time::Duration) -> Vec<Reported> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let reported = self.reported();
            if reported.len() >= count || std::time::Instant::now() > deadline {
                return reported;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
