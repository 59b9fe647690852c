//! The check API offline: `lakestar serve` answers HTTP requests to `/check` with the same
//! handler the check Lambda runs behind its function URL, each request turned into the
//! function URL's event (payload format 2.0) and its answer back into HTTP.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use lakestar::function::check::CheckFunction;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Serves `function` on `127.0.0.1:<port>` (0 for any free port) until the process ends;
/// returns the address.
pub async fn start(function: CheckFunction, port: u16) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    let function = Arc::new(function);
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else { continue };
            let function = function.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| answer(function.clone(), request));
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(socket), service).await;
            });
        }
    });
    Ok(address)
}

/// The function URL event of an HTTP request.
pub fn event(method: &str, path: &str, query: Option<&str>, body: &[u8]) -> Value {
    let parameters: serde_json::Map<String, Value> = query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), Value::String(decode(value)))
        })
        .collect();
    json!({
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": query.unwrap_or_default(),
        "queryStringParameters": parameters,
        "requestContext": {"http": {"method": method, "path": path}},
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true,
    })
}

/// A query string's percent-encoding (and `+` for a space) undone, as S3 event keys are;
/// a malformed escape is kept as written.
pub fn decode(text: &str) -> String {
    lakestar::trigger::decode_key(text).unwrap_or_else(|_| text.to_string())
}

async fn answer(function: Arc<CheckFunction>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    if path != "/check" {
        let body = json!({"error": "NotFound", "message": "the check API is POST /check"});
        return Ok(http(404, body.to_string()));
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(http(400, json!({"error": "BadRequest", "message": "unreadable body"}).to_string())),
    };
    let answered = function.handle(&event(&method, &path, query.as_deref(), &body)).await;
    let status = answered["statusCode"].as_u64().unwrap_or(500) as u16;
    Ok(http(status, answered["body"].as_str().unwrap_or_default().to_string()))
}

fn http(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(decode("landing%2F2024-01-01%2Fsales.csv"), "landing/2024-01-01/sales.csv");
        assert_eq!(decode("a+b%20c"), "a b c");
        assert_eq!(decode("100%"), "100%");
    }
}
