//! The local console: `lakestar serve`'s web pages over the offline stack. Server-rendered
//! HTML from this process (no script, no build step, nothing loaded from elsewhere: the
//! pages say so to the browser in their Content-Security-Policy): executions, one
//! execution's state graph with its re-drive, quality over time, a run's quarantine, the
//! warehouse's tables and a key's history, and a file checked without loading it.
//!
//! Actions (re-drive, process again, abandon) are forms posting to the execution; they run
//! through the same [`Stack`] the command line uses, one at a time, in the background: the
//! answer is a redirect to the execution's page, which reloads itself while it runs.

mod graph;
pub mod html;
mod pages;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use lakestar::function::check::CheckFunction;
use tokio::net::TcpListener;

pub use graph::{Graph, Visit};

use crate::stack::Stack;

/// What the console serves from.
pub struct Console {
    home: PathBuf,
    /// The stack its actions and warehouse pages use; `None` for a home no run has used yet.
    stack: Option<Stack>,
    /// The check function behind "Check a file".
    check: Option<CheckFunction>,
    graph: Graph,
    /// One action at a time: the stack runs one execution at a time.
    acting: Arc<tokio::sync::Mutex<()>>,
}

impl Console {
    /// A console over `home`, acting through `stack`, checking files with `check`.
    pub fn new(home: PathBuf, stack: Option<Stack>, check: Option<CheckFunction>) -> anyhow::Result<Console> {
        Ok(Console { home, stack, check, graph: Graph::of(crate::template::DEFINITION)?, acting: Default::default() })
    }

    /// The stack, if the console has one.
    pub fn stack(&self) -> Option<&Stack> {
        self.stack.as_ref()
    }
}

/// Serves the console on `address` until the process ends; returns the address bound.
pub async fn start(console: Arc<Console>, address: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { continue };
            let console = console.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let console = console.clone();
                    async move { Ok::<_, Infallible>(answer(console, request).await.into_response()) }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(socket), service).await;
            });
        }
    });
    Ok(bound)
}

/// A request as the pages read it.
pub(crate) struct Asked {
    method: String,
    segments: Vec<String>,
    query: BTreeMap<String, String>,
    content_type: String,
    body: Bytes,
}

impl Asked {
    fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str).filter(|value| !value.is_empty())
    }
}

/// A page's answer.
pub(crate) struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    location: Option<String>,
}

impl Reply {
    fn html(status: u16, body: String) -> Reply {
        Reply { status, content_type: "text/html; charset=utf-8", body: body.into_bytes(), location: None }
    }

    fn redirect(location: String) -> Reply {
        Reply { status: 303, content_type: "text/plain; charset=utf-8", body: Vec::new(), location: Some(location) }
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert("content-type", hyper::header::HeaderValue::from_static(self.content_type));
        // Nothing from elsewhere, ever: no script at all, styles and images inline.
        headers.insert(
            "content-security-policy",
            hyper::header::HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'",
            ),
        );
        headers.insert("cache-control", hyper::header::HeaderValue::from_static("no-store"));
        if let Some(location) = self.location
            && let Ok(value) = hyper::header::HeaderValue::from_str(&location)
        {
            headers.insert("location", value);
        }
        response
    }
}

async fn answer(console: Arc<Console>, request: Request<Incoming>) -> Reply {
    let method = request.method().as_str().to_string();
    let segments: Vec<String> =
        request.uri().path().split('/').filter(|segment| !segment.is_empty()).map(crate::check_api::decode).collect();
    let query = request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (crate::check_api::decode(name), crate::check_api::decode(value))
        })
        .collect();
    let content_type =
        request.headers().get("content-type").and_then(|value| value.to_str().ok()).unwrap_or_default().to_string();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return Reply::html(
                400,
                html::page("Bad request", "", "<p>The request's body could not be read.</p>", false),
            );
        }
    };
    let asked = Asked { method, segments, query, content_type, body };
    match Console::route(&console, &asked).await {
        Ok(reply) => reply,
        Err(error) => {
            tracing::warn!(path = %asked.segments.join("/"), "The console could not answer: {error:#}");
            Reply::html(
                500,
                html::page(
                    "Something went wrong",
                    "",
                    &format!("<div class=\"panel failure\"><pre>{}</pre></div>", html::escape(&format!("{error:#}"))),
                    false,
                ),
            )
        }
    }
}

impl Console {
    async fn route(self: &Arc<Self>, asked: &Asked) -> anyhow::Result<Reply> {
        let segments: Vec<&str> = asked.segments.iter().map(String::as_str).collect();
        match (asked.method.as_str(), segments.as_slice()) {
            ("GET", []) => self.executions(asked),
            ("GET", ["executions", name]) => self.execution(name),
            ("POST", ["executions", name, action]) => self.act(name, action).await,
            ("GET", ["executions", name, "quarantine"]) => self.quarantine(name, asked),
            ("GET", ["quality"]) => self.quality(asked),
            ("GET", ["warehouse"]) => self.warehouse().await,
            ("GET", ["warehouse", table]) => self.history(table, asked).await,
            ("GET", ["check"]) => Ok(self.check_form(None)),
            ("POST", ["check"]) => self.check_file(asked).await,
            ("GET" | "POST", _) => Ok(not_found("There is no such page.")),
            _ => Ok(Reply::html(
                405,
                html::page("Method not allowed", "", "<p>The console answers GET and POST.</p>", false),
            )),
        }
    }
}

fn not_found(message: &str) -> Reply {
    Reply::html(
        404,
        html::page(
            "Not found",
            "",
            &format!("<p>{}</p><p><a href=\"/\">All executions</a></p>", html::escape(message)),
            false,
        ),
    )
}
