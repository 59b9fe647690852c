//! A local Step Functions endpoint speaking the real JSON protocol (`AWSStepFunctions.*`
//! targets) for the two calls the trigger makes: `DescribeExecution` and `StartExecution`.
//! The trigger handler runs unchanged with a real `aws-sdk-sfn` client pointed here; started
//! executions are queued for the local stack to run.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The state machine ARN the local stack uses.
pub const STATE_MACHINE_ARN: &str = "arn:aws:states:us-east-1:000000000000:stateMachine:lakestar";

/// An execution the trigger asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    /// The execution name (the run id).
    pub name: String,
    /// The input document.
    pub input: Value,
}

/// What the endpoint knows: names that exist (from earlier executions or started now), and
/// the executions started since the stack last took them.
#[derive(Debug, Default)]
pub struct Registry {
    /// Every execution name known.
    pub names: BTreeSet<String>,
    /// Started, not yet run.
    pub pending: Vec<Started>,
}

/// The running endpoint.
pub struct LocalStepFunctions {
    address: SocketAddr,
    registry: Arc<Mutex<Registry>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for LocalStepFunctions {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"));
    response
}

fn error(kind: &str, message: String) -> Response<Full<Bytes>> {
    let mut response = reply(StatusCode::BAD_REQUEST, json!({"__type": kind, "message": message}));
    if let Ok(value) = hyper::header::HeaderValue::from_str(kind) {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

async fn handle(
    registry: Arc<Mutex<Registry>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let target =
        request.headers().get("x-amz-target").and_then(|value| value.to_str().ok()).unwrap_or_default().to_string();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(error("InvalidRequest", "unreadable body".to_string())),
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Ok(mut registry) = registry.lock() else {
        return Ok(error("InternalError", "the registry is unavailable".to_string()));
    };
    let execution_arn =
        |name: &str| format!("{}:{name}", STATE_MACHINE_ARN.replacen(":stateMachine:", ":execution:", 1));
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    Ok(match target.as_str() {
        "AWSStepFunctions.StartExecution" => {
            let name = body["name"].as_str().unwrap_or_default().to_string();
            if registry.names.contains(&name) {
                error("ExecutionAlreadyExists", format!("Execution Already Exists: '{}'", execution_arn(&name)))
            } else {
                let input =
                    body["input"].as_str().and_then(|text| serde_json::from_str(text).ok()).unwrap_or(json!({}));
                registry.names.insert(name.clone());
                registry.pending.push(Started { name: name.clone(), input });
                reply(StatusCode::OK, json!({"executionArn": execution_arn(&name), "startDate": now}))
            }
        }
        "AWSStepFunctions.DescribeExecution" => {
            let arn = body["executionArn"].as_str().unwrap_or_default();
            let name = arn.rsplit(':').next().unwrap_or_default();
            if registry.names.contains(name) {
                reply(
                    StatusCode::OK,
                    json!({"executionArn": arn, "stateMachineArn": STATE_MACHINE_ARN, "name": name, "status": "RUNNING", "startDate": now}),
                )
            } else {
                error("ExecutionDoesNotExist", format!("Execution Does Not Exist: '{arn}'"))
            }
        }
        other => error("UnknownOperationException", format!("the local endpoint does not implement `{other}`")),
    })
}

impl LocalStepFunctions {
    /// Starts the endpoint on a free loopback port, knowing `names` already.
    pub async fn start(names: BTreeSet<String>) -> std::io::Result<LocalStepFunctions> {
        let registry = Arc::new(Mutex::new(Registry { names, pending: Vec::new() }));
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = registry.clone();
        tokio::spawn(async move {
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(_) => continue,
                    },
                    _ = &mut stopped => break,
                };
                let registry = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| handle(registry.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Ok(LocalStepFunctions { address, registry, stop: Some(stop) })
    }

    /// A real SDK client for this endpoint.
    pub fn client(&self) -> aws_sdk_sfn::Client {
        let config = aws_sdk_sfn::Config::builder()
            .behavior_version(aws_sdk_sfn::config::BehaviorVersion::latest())
            .region(aws_sdk_sfn::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://{}", self.address))
            .credentials_provider(aws_sdk_sfn::config::Credentials::new("local", "local", None, None, "lakestar-local"))
            .build();
        aws_sdk_sfn::Client::from_conf(config)
    }

    /// Takes the executions started since the last call, in the order they were started.
    pub fn take_pending(&self) -> Vec<Started> {
        self.registry.lock().map(|mut registry| std::mem::take(&mut registry.pending)).unwrap_or_default()
    }
}
