//! Load-test peer for knockoff-serve: a trivial axum handler on the same stack (axum 0.8,
//! tokio multi-threaded runtime with its default worker count, system allocator, same
//! release profile) that answers `POST /v1/score` with a fixed small JSON body. Its request
//! rate is the ceiling that HTTP + axum + tokio alone allow on this machine, so
//! knockoff-serve's rate can be read as a share of it (see BENCHMARKS.md).
//!
//! Serve (until SIGTERM/Ctrl-C, or for `KNOCKOFF_TRIVIAL_SECS` seconds if set):
//!     cargo bench --bench trivial_axum
//!     KNOCKOFF_TRIVIAL_ADDR=127.0.0.1:8081 KNOCKOFF_TRIVIAL_SECS=120 cargo bench --bench trivial_axum
//!
//! Without the `--bench` argument that `cargo bench` passes (e.g. under
//! `cargo test --benches`) it binds a free loopback port, sends itself one request, checks
//! the answer and exits, so a test run never hangs on a server.

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

const DEFAULT_ADDR: &str = "127.0.0.1:8081";
/// About the size of one knockoff-serve answer without reasons.
const FIXED_BODY: &str = r#"{"model":{"name":"trivial","version":"0"},"results":[{"id":"a1","probability":0.5,"decision":"allow","reasons":[]}]}"#;

/// Reads the whole body (as knockoff-serve does) and answers with the fixed JSON.
async fn score(body: Bytes) -> impl IntoResponse {
    std::hint::black_box(body.len());
    ([(header::CONTENT_TYPE, "application/json")], FIXED_BODY)
}

fn router() -> Router {
    Router::new().route("/v1/score", post(score))
}

async fn shutdown_signal(limit: Option<Duration>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let timer = async {
        match limit {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
        _ = timer => {}
    }
}

/// One request to our own listener over a plain blocking socket (tokio's io-util feature
/// is not among the crate's dependencies); returns the response text.
fn smoke_request(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = r#"{"id":"a1","title":"test"}"#;
    let request = format!(
        "POST /v1/score HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

fn main() -> anyhow::Result<()> {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        if !bench_mode {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let server = tokio::spawn(async move { axum::serve(listener, router()).await });
            let response = tokio::task::spawn_blocking(move || smoke_request(addr)).await??;
            server.abort();
            anyhow::ensure!(
                response.starts_with("HTTP/1.1 200") && response.ends_with(FIXED_BODY),
                "unexpected answer: {response}"
            );
            println!(
                "trivial_axum smoke check passed (run `cargo bench --bench trivial_axum` to serve)"
            );
            return Ok(());
        }
        let addr: SocketAddr = std::env::var("KNOCKOFF_TRIVIAL_ADDR")
            .unwrap_or_else(|_| DEFAULT_ADDR.into())
            .parse()?;
        anyhow::ensure!(addr.ip().is_loopback(), "serve on a loopback address only");
        let limit = match std::env::var("KNOCKOFF_TRIVIAL_SECS") {
            Ok(s) => Some(Duration::from_secs(s.parse()?)),
            Err(_) => None,
        };
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!(
            "trivial_axum listening on http://{} (POST /v1/score){}",
            listener.local_addr()?,
            limit.map_or(String::new(), |d| format!(", for {}s", d.as_secs()))
        );
        axum::serve(listener, router())
            .with_graceful_shutdown(shutdown_signal(limit))
            .await?;
        Ok(())
    })
}
