//! Cold start: each function's release binary started as Lambda starts it (the runtime API
//! in the environment), timed from process start to its first request for an event — the
//! moment it is ready — and its size on disk. The contract comes from an embedded S3 endpoint
//! as in the cloud; the load function opens a SQLite warehouse (RDS would add its network
//! round trips).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_s3::primitives::ByteStream;
use lakestar::lake::EmbeddedS3;

/// The functions, by binary name.
pub const FUNCTIONS: [&str; 6] =
    ["lakestar-trigger", "lakestar-ingest", "lakestar-validate", "lakestar-mask", "lakestar-load", "lakestar-extract"];

/// A fake Lambda runtime API that reports when a process asks for its first event.
fn runtime_api() -> anyhow::Result<(u16, mpsc::Receiver<Instant>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let at = Instant::now();
            let mut buffer = [0u8; 1024];
            let read = stream.read(&mut buffer).unwrap_or(0);
            if String::from_utf8_lossy(&buffer[..read]).contains("/runtime/invocation/next") {
                let _ = sender.send(at);
            }
            // No event for it: it will wait or retry until it is stopped.
            let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n");
        }
    });
    Ok((port, receiver))
}

/// Starts each function `runs` times and prints the median time to ready and the binary size.
pub async fn bench(bin_dir: &Path, runs: usize) -> anyhow::Result<serde_json::Value> {
    let work = tempfile::tempdir()?;
    let s3 = EmbeddedS3::start(&work.path().join("s3")).await?;
    s3.create_bucket("bench").await?;
    let contract = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail/pipeline.toml"))?;
    s3.client()
        .put_object()
        .bucket("bench")
        .key(lakestar::lake::CONFIG_KEY)
        .body(ByteStream::from(contract))
        .send()
        .await?;
    let (port, ready) = runtime_api()?;
    let (access, secret) = s3.credentials();
    let warehouse = format!("sqlite://{}", work.path().join("warehouse.db").display());
    println!("{:<20} {:>12} {:>12} {:>12} {:>14}", "function", "ready (ms)", "fastest", "size (MB)", "deflated (MB)");
    let mut results = Vec::new();
    for function in FUNCTIONS {
        let binary: PathBuf = bin_dir.join(function);
        let size = std::fs::metadata(&binary)
            .with_context(|| {
                format!("{}: build it first with `cargo build --release -p {function}`", binary.display())
            })?
            .len();
        // What a zip of the binary weighs: deflate at the default level.
        let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        deflater.write_all(&std::fs::read(&binary)?)?;
        let deflated = deflater.finish()?.len();
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            while ready.try_recv().is_ok() {}
            let started = Instant::now();
            let mut child = Command::new(&binary)
                .env_clear()
                .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
                .env("AWS_LAMBDA_FUNCTION_NAME", function)
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}"))
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", access)
                .env("AWS_SECRET_ACCESS_KEY", secret)
                .env("AWS_ENDPOINT_URL_S3", s3.endpoint())
                .env("LAKESTAR_S3_PATH_STYLE", "true")
                .env("LAKE_BUCKET", "bench")
                .env("STATE_MACHINE_ARN", "arn:aws:states:us-east-1:000000000000:stateMachine:lakestar")
                .env("LAKESTAR_MASKING_KEY", "0123456789abcdef0123456789abcdef")
                .env("LAKESTAR_WAREHOUSE_URL", &warehouse)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("starting {}", binary.display()))?;
            let at = ready.recv_timeout(Duration::from_secs(20));
            let _ = child.kill();
            let output = child.wait_with_output()?;
            match at {
                Ok(at) => times.push(at.duration_since(started).as_secs_f64() * 1000.0),
                Err(_) => anyhow::bail!(
                    "{function} never asked for an event: {}",
                    String::from_utf8_lossy(&output.stderr).chars().take(2000).collect::<String>()
                ),
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{function:<20} {median:>12.1} {:>12.1} {:>12.2} {:>14.2}",
            times[0],
            size as f64 / 1e6,
            deflated as f64 / 1e6
        );
        results.push(serde_json::json!({"function": function, "ready_ms_median": median, "ready_ms_fastest": times[0], "binary_bytes": size, "deflated_bytes": deflated}));
    }
    Ok(serde_json::json!({"cold_start": results}))
}
