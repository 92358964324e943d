//! End-to-end tests of the real `knockoff-serve` binary: start it on a free port, score
//! over HTTP, reload by SIGHUP, stop it with SIGTERM/SIGINT and check a clean exit; and
//! an unmodified `tritonclient[http]` against it when Python has that module.

mod common;

use common::http;
use common::server::{start, START_TIMEOUT};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "binary-test-admin-token-42";

fn listings() -> Value {
    json!([
        {"id": "a-1", "title": "Rolex Submariner 1:1 super clone AAA", "description": "factory direct, wholesale price",
         "price": 45.0, "currency": "USD", "brand": "Rolex", "category": "watches"},
        {"id": 2, "title": "Irontek ceramic coffee mug set of 4 green", "description": "",
         "price": 37.46, "currency": "USD", "brand": "Irontek", "category": "home"},
        {"id": "c", "title": "Nike Air Jordan 1 Retro High OG red", "description": "48小时内发货",
         "price": 160.37, "currency": "EUR", "brand": "Nike", "category": "sneakers"}
    ])
}

#[test]
fn serves_over_http_reloads_on_sighup_and_exits_cleanly_on_sigterm() {
    let dir = common::tiny_model_dir();
    let mut server = start(
        dir.path(),
        &[],
        &[("KNOCKOFF_ADMIN_TOKEN", TOKEN), ("KNOCKOFF_REASONS", "2")],
    );
    // The configuration is logged once, with the token redacted.
    let config = server
        .seen
        .iter()
        .find(|v| v["fields"]["message"] == "starting knockoff-serve")
        .expect("configuration logged")
        .to_string();
    assert!(
        config.contains("<redacted>") && !config.contains(TOKEN),
        "{config}"
    );
    assert!(config.contains("reasons: 2"), "{config}");
    server.wait_ready();

    let (status, body) = server.post("/v1/score", &json!({ "listings": listings() }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"]["name"], common::TINY_MODEL_NAME);
    let results = body["results"].as_array().unwrap();
    let ids: Vec<&str> = results.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a-1", "2", "c"]);
    for result in results {
        assert!(result["reasons"].as_array().unwrap().len() <= 2, "{result}");
    }
    let (status, body) = server.post(
        "/v1/score",
        &json!({"title": "mug", "price": -1, "currency": "USD"}),
    );
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("price")),
        "{body}"
    );
    let (status, _) = http(server.addr, "POST", "/v1/score", &[], b"{nope").unwrap();
    assert_eq!(status, 400);

    let auth = format!("Bearer {TOKEN}");
    let (status, body) = http(
        server.addr,
        "POST",
        "/admin/reload",
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    server.wait_for_log("model reloaded", START_TIMEOUT);

    server.signal(libc::SIGHUP);
    server.wait_for_log("model reloaded", START_TIMEOUT);
    let (status, metrics) = http(server.addr, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("knockoff_model_reloads_total{result=\"success\"} 2"),
        "{metrics}"
    );

    server.signal(libc::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{status:?}");
    server.wait_for_log("stopped", Duration::from_secs(5));
}

#[test]
fn ctrl_c_stops_cleanly_too() {
    let dir = common::tiny_model_dir();
    let mut server = start(dir.path(), &["--shutdown-timeout-secs", "5"], &[]);
    server.wait_ready();
    // Admin routes are off without a token.
    let (status, body) = http(
        server.addr,
        "POST",
        "/admin/reload",
        &[("Authorization", "Bearer x")],
        b"",
    )
    .unwrap();
    assert_eq!(status, 403, "{body}");
    server.signal(libc::SIGINT);
    assert_eq!(server.wait_exit(Duration::from_secs(30)).code(), Some(0));
}

#[test]
fn bad_start_up_fails_with_a_message() {
    let bin = env!("CARGO_BIN_EXE_knockoff-serve");
    let output = Command::new(bin)
        .args(["--queue-capacity", "0", "--model", "/nonexistent"])
        .env_remove("KNOCKOFF_QUEUE_CAPACITY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("queue-capacity"));

    let output = Command::new(bin)
        .args(["--expected-prevalence", "1.5", "--model", "/nonexistent"])
        .env_remove("KNOCKOFF_EXPECTED_PREVALENCE")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("expected-prevalence"));

    let output = Command::new(bin)
        .args([
            "--model",
            "/nonexistent/knockoff-model",
            "--addr",
            "127.0.0.1:0",
        ])
        .env_remove("KNOCKOFF_MODEL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not found"));
}

/// The Python with tritonclient: the peers' venv when it exists, else python3.
fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("training/peers/.venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

#[test]
fn unmodified_tritonclient_gets_correct_answers() {
    let python = python();
    let has_client = Command::new(&python)
        .args(["-c", "import tritonclient.http, numpy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_client {
        println!(
            "SKIPPED unmodified_tritonclient_gets_correct_answers: {} cannot import tritonclient.http \
             (pip install \"tritonclient[http]\" numpy)",
            python.display()
        );
        return;
    }
    let dir = common::tiny_model_dir();
    let mut server = start(dir.path(), &[], &[]);
    server.wait_ready();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/triton_client.py");
    let output = Command::new(&python)
        .arg(script)
        .args([
            "--url",
            &server.addr.to_string(),
            "--model",
            common::TINY_MODEL_NAME,
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "triton client failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).expect("client prints JSON");

    // The protocol path gives exactly what /v1/score gives for the same listings.
    let (status, v1) = server.post("/v1/score", &json!({ "listings": listings() }));
    assert_eq!(status, 200);
    for (row, result) in v1["results"].as_array().unwrap().iter().enumerate() {
        let p1 = result["probability"].as_f64().unwrap();
        let p2 = answer["probability"][row].as_f64().unwrap();
        assert!((p1 - p2).abs() < 1e-6, "row {row}: v1 {p1}, triton {p2}");
        assert_eq!(result["decision"], answer["decision"][row]);
    }
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(30)).code(), Some(0));
}

#[test]
fn the_shipped_model_answers_which_brand_a_listing_imitates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let server = start(&dir, &["--expected-prevalence", "0.03"], &[]);
    server.wait_ready();
    let (status, body) = server.post(
        "/v1/score",
        &json!({"listings": [
            {"id": "fake", "title": "R0LEX Submariner 1:1 automatic", "price": 60, "currency": "USD"},
            {"id": "case", "title": "silicone case for Apple iPhone 15", "price": 4, "currency": "USD"},
            {"id": "toy", "title": "Wooden stacking rings for toddlers", "price": 9, "currency": "GBP",
             "brand": "Little Acorn", "category": "Baby"}
        ]}),
    );
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    let fake = &results[0]["brand"];
    assert_eq!(fake["name"], "Rolex", "{body}");
    assert_eq!(
        (
            fake["found_in"].as_str(),
            fake["how"].as_str(),
            fake["text"].as_str(),
            fake["relation"].as_str()
        ),
        (Some("title"), Some("leet"), Some("R0LEX"), Some("is")),
        "{body}"
    );
    assert_eq!(results[1]["brand"]["relation"], "for", "{body}");
    assert_ne!(results[1]["decision"], "block", "{body}");
    assert!(results[2]["brand"].is_null(), "{body}");
    assert_eq!(results[2]["decision"], "allow", "{body}");
}

/// Reads one HTTP answer's status and headers from `stream` (the body is not needed).
fn read_head(stream: &mut std::net::TcpStream) -> (u16, String) {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("answer head reads");
        assert_eq!(
            n,
            1,
            "connection closed mid-head: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase())
}

/// Sends a request head announcing `length` body bytes, and `sent` of them.
fn start_request(addr: SocketAddr, length: usize, sent: &[u8]) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /v1/score HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(sent).unwrap();
    stream
}

#[test]
fn work_over_the_in_flight_bound_gets_429_before_its_body_is_sent() {
    use std::io::Write;
    let dir = common::tiny_model_dir();
    let server = start(
        dir.path(),
        &[
            "--max-body-bytes",
            "100000",
            "--small-request-bytes",
            "1000",
            "--small-reserve-bytes",
            "1000",
            "--max-inflight-bytes",
            "101000",
            "--admission-wait-ms",
            "0",
            "--connection-buffer-bytes",
            "8192",
        ],
        &[],
    );
    server.wait_ready();
    // A big request holds the whole shared pool while its body trickles in.
    let listing = listings()[0].to_string();
    let mut big = format!("{{\"listings\": [{listing}]}}").into_bytes();
    big.resize(100_000, b' ');
    let mut held = start_request(server.addr, big.len(), &big[..10]);
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let (_, metrics) = http(server.addr, "GET", "/metrics", &[], b"").unwrap();
        if metrics.contains("knockoff_inflight_bytes 100000") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the big request was never admitted: {metrics}"
        );
    }
    // A second one is answered 429 from its head alone: not a byte of its body is sent.
    let mut refused = start_request(server.addr, 50_000, b"");
    let (status, head) = read_head(&mut refused);
    assert_eq!(status, 429, "{head}");
    assert!(head.contains("retry-after: 1"), "{head}");
    // A small request passes meanwhile, on the reserve.
    let (status, body) = server.post("/v1/score", &listings()[1]);
    assert_eq!(status, 200, "{body}");
    // The big one finishes and is answered.
    held.write_all(&big[10..]).unwrap();
    let (status, head) = read_head(&mut held);
    assert_eq!(status, 200, "{head}");
    // A connection buffers at most --connection-buffer-bytes: headers beyond it are
    // refused (431) instead of buffered, while 100 KB bodies streamed through it above.
    // The server answers and closes once its buffer is full, before the client has
    // written everything: a write may then fail with a broken pipe, and the answer
    // is read regardless.
    let long = "x".repeat(10_000);
    let body = listings()[1].to_string();
    let mut stream = std::net::TcpStream::connect(server.addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = format!(
        "POST /v1/score HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nX-Padding: {long}\r\nContent-Length: {}\r\n\r\n{body}",
        server.addr,
        body.len()
    );
    if let Err(e) = stream.write_all(request.as_bytes()) {
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "{e}"
        );
    }
    let (status, head) = read_head(&mut stream);
    assert_eq!(status, 431, "{head}");
}
