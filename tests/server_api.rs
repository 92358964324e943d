//! In-process tests of knockoff-serve's router: every route and every error answer,
//! driven through `tower::ServiceExt::oneshot` against a tiny model trained from the
//! fixture (no network, no port).

mod common;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use knockoff::http::config::AdminToken;
use knockoff::http::{router, serve, AppState, Drained, ServerConfig};
use knockoff::model::Model;
use knockoff::serve::StateOptions;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const TOKEN: &str = "test-admin-token-0123456789";

struct Server {
    state: AppState,
    app: Router,
    _dir: tempfile::TempDir,
}

fn server() -> Server {
    server_with(|_| {}, StateOptions::default())
}

fn server_with(configure: impl FnOnce(&mut ServerConfig), options: StateOptions) -> Server {
    let dir = common::tiny_model_dir();
    let mut config = ServerConfig::new(dir.path());
    configure(&mut config);
    let model = Model::load(dir.path()).expect("tiny model loads");
    let state = AppState::with_options(config, model, options).expect("state builds");
    Server {
        app: router(state.clone()),
        state,
        _dir: dir,
    }
}

fn with_admin(config: &mut ServerConfig) {
    config.admin_token = Some(AdminToken::new(TOKEN).unwrap());
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts an error answer: the status, the JSON shape and the blamed field.
    fn assert_error(&self, status: StatusCode, field: Option<&str>) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        let body = self.json();
        let error = body["error"].as_str().unwrap_or_default();
        assert!(!error.is_empty(), "error message missing: {body}");
        assert_eq!(
            body.get("field").and_then(Value::as_str),
            field,
            "body: {body}"
        );
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert!(
            keys.iter().all(|k| *k == "error" || *k == "field"),
            "{body}"
        );
        assert!(self.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        body
    }
}

fn request(method: Method, path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

async fn send_on(app: Router, request: Request<Body>) -> Answer {
    let response = app.oneshot(request).await.expect("router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body reads")
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

impl Server {
    async fn send(&self, request: Request<Body>) -> Answer {
        send_on(self.app.clone(), request).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(request(Method::GET, path, Body::empty())).await
    }

    async fn post(&self, path: &str, body: impl Into<Body>) -> Answer {
        self.send(request(Method::POST, path, body)).await
    }

    async fn post_json(&self, path: &str, body: &Value) -> Answer {
        self.post(path, body.to_string()).await
    }

    async fn reload(&self, token: Option<&str>, body: &str) -> Answer {
        self.authed(Method::POST, "/admin/reload", token, body)
            .await
    }

    async fn put_brand(&self, name: &str, token: Option<&str>, body: &str) -> Answer {
        let path = format!("/v1/brands/{name}");
        self.authed(Method::PUT, &path, token, body).await
    }

    /// A request with an optional `Authorization: Bearer` token.
    async fn authed(&self, method: Method, path: &str, token: Option<&str>, body: &str) -> Answer {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(builder.body(Body::from(body.to_string())).unwrap())
            .await
    }

    fn model_name(&self) -> String {
        self.state.model_info().name
    }
}

/// Polls `condition` until it holds; a bounded wait, never a fixed sleep.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn fake_rolex() -> Value {
    json!({
        "id": "a-1",
        "title": "Rolex Submariner 1:1 super clone AAA",
        "description": "factory direct, wholesale price",
        "price": 45,
        "currency": "USD",
        "brand": "Rolex",
        "category": "watches"
    })
}

fn mug() -> Value {
    json!({
        "id": 17,
        "title": "Irontek ceramic coffee mug set of 4 green",
        "price": "37.46",
        "currency": "usd",
        "brand": "Irontek",
        "category": "home"
    })
}

fn assert_result_shape(result: &Value) {
    let p = result["probability"].as_f64().expect("probability");
    assert!((0.0..=1.0).contains(&p), "{result}");
    assert!(
        ["allow", "review", "block"].contains(&result["decision"].as_str().unwrap()),
        "{result}"
    );
    for reason in result["reasons"].as_array().expect("reasons") {
        assert!(!reason["text"].as_str().unwrap().is_empty());
        assert!(reason["weight"].as_f64().unwrap().is_finite());
    }
}

// ---------------------------------------------------------------- /v1/score

#[tokio::test]
async fn scores_one_listing() {
    let server = server();
    let answer = server.post_json("/v1/score", &fake_rolex()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let info = server.state.model_info();
    assert_eq!(
        body["model"],
        json!({"name": info.name, "version": info.version})
    );
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["id"], "a-1");
    assert_result_shape(&results[0]);
    let reasons = results[0]["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty() && reasons.len() <= 3, "{reasons:?}");
}

#[tokio::test]
async fn scores_a_batch_in_order_with_the_same_scores_as_single_requests() {
    let server = server();
    let listings = vec![fake_rolex(), mug(), json!({"title": "plain notebook"})];
    let answer = server
        .post_json("/v1/score", &json!({ "listings": listings }))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let results = answer.json()["results"].as_array().unwrap().clone();
    let ids: Vec<&str> = results.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a-1", "17", ""]);
    for (listing, batched) in listings.iter().zip(&results) {
        assert_result_shape(batched);
        let single = server.post_json("/v1/score", listing).await.json();
        let alone = single["results"][0]["probability"].as_f64().unwrap();
        assert!((alone - batched["probability"].as_f64().unwrap()).abs() < 1e-6);
        assert_eq!(single["results"][0]["decision"], batched["decision"]);
    }
}

#[tokio::test]
async fn reasons_follow_the_configured_count() {
    let server = server_with(|c| c.reasons = 0, StateOptions::default());
    let body = server.post_json("/v1/score", &fake_rolex()).await.json();
    assert_eq!(body["results"][0]["reasons"], json!([]));
    let server = server_with(|c| c.reasons = 1, StateOptions::default());
    let body = server.post_json("/v1/score", &fake_rolex()).await.json();
    assert_eq!(body["results"][0]["reasons"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn threshold_overrides_decide() {
    let everything_blocked = server_with(
        |c| {
            c.thresholds.review = Some(0.0);
            c.thresholds.block = Some(0.0);
        },
        StateOptions::default(),
    );
    let body = everything_blocked
        .post_json("/v1/score", &json!({"listings": [mug(), fake_rolex()]}))
        .await
        .json();
    // Only a listing that claims a known brand may be blocked; the others are at most
    // reviewed, whatever the thresholds.
    for result in body["results"].as_array().unwrap() {
        if result["brand"]["relation"] == "is" {
            assert_eq!(result["decision"], "block", "{result}");
        } else {
            assert_ne!(result["decision"], "block", "{result}");
        }
    }
}

#[tokio::test]
async fn malformed_json_is_400() {
    let server = server();
    for body in [
        &b""[..],
        b"{",
        b"not json",
        b"{\"title\": \"a\"} trailing",
        b"{\"title\": \"a\",}",
        b"\xff\xfe{}",
    ] {
        for route in ["/v1/score", "/v2/models/tiny/infer"] {
            let answer = server.post(route, body.to_vec()).await;
            let error = answer.assert_error(StatusCode::BAD_REQUEST, None);
            assert!(error["error"].as_str().unwrap().contains("JSON"), "{error}");
        }
    }
    // Nesting beyond serde_json's recursion limit is refused, not a stack overflow.
    let deep = "[".repeat(100_000);
    server
        .post("/v1/score", deep)
        .await
        .assert_error(StatusCode::BAD_REQUEST, None);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let server = server_with(|c| c.max_body_bytes = 512, StateOptions::default());
    let big = json!({"title": "x".repeat(600)});
    let answer = server.post_json("/v1/score", &big).await;
    let error = answer.assert_error(StatusCode::PAYLOAD_TOO_LARGE, None);
    assert!(error["error"].as_str().unwrap().contains("512"), "{error}");
    server
        .post_json("/v2/models/tiny/infer", &big)
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, None);
    // Just under the limit still works.
    let answer = server.post_json("/v1/score", &fake_rolex()).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn invalid_listings_are_422_naming_the_field() {
    let server = server();
    let cases: Vec<(Value, Option<&str>, &str)> = vec![
        (json!({}), Some("title"), "required"),
        (json!({"title": "   "}), Some("title"), "required"),
        (json!({"title": null}), Some("title"), "required"),
        (json!({"title": 5}), Some("title"), "string"),
        (json!({"title": "x".repeat(1_001)}), Some("title"), "limit"),
        (
            json!({"title": "a", "description": "x".repeat(20_001)}),
            Some("description"),
            "limit",
        ),
        (
            json!({"title": "a", "brand": "x".repeat(1_001)}),
            Some("brand"),
            "limit",
        ),
        (
            json!({"title": "a", "price": -1, "currency": "USD"}),
            Some("price"),
            "negative",
        ),
        (
            json!({"title": "a", "price": "12,5x", "currency": "USD"}),
            Some("price"),
            "not a number",
        ),
        (
            json!({"title": "a", "price": true, "currency": "USD"}),
            Some("price"),
            "number",
        ),
        (
            json!({"title": "a", "price": 5, "currency": "XYZ"}),
            Some("currency"),
            "XYZ",
        ),
        (
            json!({"title": "a", "price": 5}),
            Some("currency"),
            "required",
        ),
        (
            json!({"title": "a", "id": [1]}),
            Some("id"),
            "string or an integer",
        ),
        (
            json!({"title": "a", "id": "x".repeat(1_001)}),
            Some("id"),
            "limit",
        ),
        (
            json!({"listings": [fake_rolex(), {"title": "a", "price": -3, "currency": "EUR"}]}),
            Some("listings[1].price"),
            "negative",
        ),
        (
            json!({"listings": [fake_rolex(), {"price": 3}]}),
            Some("listings[1].title"),
            "required",
        ),
        (
            json!({"listings": [fake_rolex(), {"title": ["a"]}]}),
            Some("listings[1].title"),
            "string",
        ),
        (
            json!({"listings": [fake_rolex(), "a listing"]}),
            Some("listings[1]"),
            "object",
        ),
        (json!({"listings": []}), Some("listings"), "at least one"),
        (
            json!({"listings": {"title": "a"}}),
            Some("listings"),
            "array",
        ),
        (json!([fake_rolex()]), None, "listing object"),
        (json!(42), None, "listing object"),
    ];
    for (body, field, words) in cases {
        let answer = server.post_json("/v1/score", &body).await;
        let error = answer.assert_error(StatusCode::UNPROCESSABLE_ENTITY, field);
        let message = error["error"].as_str().unwrap();
        assert!(
            message.contains(words),
            "{message:?} should mention {words:?} for {body}"
        );
    }
}

#[tokio::test]
async fn batch_size_is_limited() {
    let server = server_with(|c| c.max_batch_listings = 3, StateOptions::default());
    let four = json!({"listings": [mug(), mug(), mug(), mug()]});
    let error = server
        .post_json("/v1/score", &four)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, Some("listings"));
    assert!(error["error"].as_str().unwrap().contains("limit is 3"));
    let three = json!({"listings": [mug(), mug(), mug()]});
    assert_eq!(
        server.post_json("/v1/score", &three).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn full_queue_answers_429_at_once_with_retry_after() {
    let server = server_with(
        |c| c.queue_capacity = 2,
        StateOptions { start_paused: true },
    );
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let app = server.app.clone();
            let body = fake_rolex().to_string();
            tokio::spawn(
                async move { send_on(app, request(Method::POST, "/v1/score", body)).await },
            )
        })
        .collect();
    let queue = server.state.queue();
    wait_until("two queued requests", || queue.depth() == 2).await;

    let answer = server.post_json("/v1/score", &mug()).await;
    answer.assert_error(StatusCode::TOO_MANY_REQUESTS, None);
    assert_eq!(answer.headers[header::RETRY_AFTER], "1");
    let infer =
        json!({"inputs": [{"name": "title", "shape": [1], "datatype": "BYTES", "data": ["a"]}]});
    server
        .post_json("/v2/models/tiny/infer", &infer)
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, None);

    queue.resume();
    for task in waiting {
        let answer = task.await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.contains(
            r#"knockoff_rejected_requests_total{route="/v1/score",reason="queue_full"} 1"#
        ),
        "{metrics}"
    );
    // Once drained, the queue takes work again.
    assert_eq!(
        server.post_json("/v1/score", &mug()).await.status,
        StatusCode::OK
    );
}

/// A `{"listings": [...]}` body of `n` copies of `listing`, padded with white space to
/// exactly `bytes` (still valid JSON).
fn padded_batch(listing: &Value, n: usize, bytes: usize) -> String {
    let mut body = json!({ "listings": vec![listing.clone(); n] }).to_string();
    assert!(body.len() <= bytes, "{} > {bytes}", body.len());
    body.extend(std::iter::repeat_n(' ', bytes - body.len()));
    body
}

#[tokio::test]
async fn work_over_the_in_flight_bound_is_refused_at_once_and_small_requests_still_pass() {
    // The shared pool holds one 20,000-byte request; 2,000 bytes are kept for requests of
    // at most 1,000 bytes.
    let server = server_with(
        |c| {
            c.max_body_bytes = 20_000;
            c.admission.small_request_bytes = 1_000;
            c.admission.small_reserve_bytes = 2_000;
            c.admission.max_inflight_bytes = 22_000;
            // Refused at once, not after the default wait for room.
            c.admission.max_wait = std::time::Duration::ZERO;
        },
        StateOptions { start_paused: true },
    );
    let big = padded_batch(&fake_rolex(), 20, 20_000);
    let app = server.app.clone();
    let held = tokio::spawn({
        let big = big.clone();
        async move { send_on(app, request(Method::POST, "/v1/score", big)).await }
    });
    let queue = server.state.queue();
    wait_until("the big request to be queued", || queue.depth() == 1).await;
    assert_eq!(server.state.core().admission().in_flight(), 20_000);

    // Another big one does not fit: 429 with Retry-After, before its body is read.
    let answer = server.post("/v1/score", big.clone()).await;
    answer.assert_error(StatusCode::TOO_MANY_REQUESTS, None);
    assert_eq!(answer.headers[header::RETRY_AFTER], "1");
    let body =
        json!({"inputs": [{"name": "title", "shape": [1], "datatype": "BYTES", "data": ["a"]}]});
    let padded = format!("{body}{}", " ".repeat(5_000));
    server
        .post("/v2/models/tiny/infer", padded)
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, None);
    // A body of unknown length is counted as it streams, and refused when it outgrows
    // the room left.
    let chunks: Vec<Result<String, std::io::Error>> =
        vec![Ok(big[..3_000].to_string()), Ok(big[3_000..].to_string())];
    let streamed = Body::from_stream(futures_util::stream::iter(chunks));
    server
        .post("/v1/score", streamed)
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS, None);

    // Small requests use the reserve: admitted (they wait in the paused queue).
    let small: Vec<_> = (0..2)
        .map(|_| {
            let app = server.app.clone();
            let body = mug().to_string();
            tokio::spawn(
                async move { send_on(app, request(Method::POST, "/v1/score", body)).await },
            )
        })
        .collect();
    wait_until("the small requests to be queued", || queue.depth() == 3).await;
    // Health and metrics never need a ticket.
    assert_eq!(server.get("/v2/health/ready").await.status, StatusCode::OK);
    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.contains("knockoff_inflight_bytes_limit 22000"),
        "{metrics}"
    );

    queue.resume();
    for task in small.into_iter().chain([held]) {
        let answer = task.await.unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    // Every permit is back once the answers are sent.
    assert_eq!(server.state.core().admission().in_flight(), 0);
    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.contains(
            r#"knockoff_rejected_requests_total{route="/v1/score",reason="overloaded"} 2"#
        ),
        "{metrics}"
    );
    assert_eq!(server.post("/v1/score", big).await.status, StatusCode::OK);
}

// ---------------------------------------------------------------- inference protocol v2

fn infer_body() -> Value {
    json!({
        "id": "req-7",
        "inputs": [
            {"name": "title", "shape": [2], "datatype": "BYTES",
             "data": ["Rolex Submariner 1:1 super clone AAA", "Irontek ceramic coffee mug set of 4 green"]},
            {"name": "description", "shape": [2, 1], "datatype": "BYTES",
             "data": [["factory direct, wholesale price"], [""]]},
            {"name": "price", "shape": [2], "datatype": "FP64", "data": [45.0, 37.46]},
            {"name": "currency", "shape": [2], "datatype": "BYTES", "data": ["USD", "usd"]},
            {"name": "brand", "shape": [2], "datatype": "BYTES", "data": ["Rolex", "Irontek"]},
            {"name": "category", "shape": [2], "datatype": "BYTES", "data": ["watches", "home"]}
        ]
    })
}

#[tokio::test]
async fn v2_health_and_metadata() {
    let server = server();
    let live = server.get("/v2/health/live").await;
    assert_eq!(
        (live.status, live.json()),
        (StatusCode::OK, json!({"live": true}))
    );
    let ready = server.get("/v2/health/ready").await;
    assert_eq!(
        (ready.status, ready.json()),
        (StatusCode::OK, json!({"ready": true}))
    );

    let meta = server.get("/v2").await.json();
    assert_eq!(meta["name"], "knockoff-serve");
    assert!(meta["version"].is_string() && meta["extensions"].is_array());

    let info = server.state.model_info();
    let model = server.get("/v2/models/tiny").await;
    assert_eq!(model.status, StatusCode::OK);
    let model = model.json();
    assert_eq!(model["name"], "tiny");
    assert_eq!(model["versions"], json!([info.version]));
    let inputs: Vec<(String, String)> = model["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().into(),
                t["datatype"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (name, datatype) in [
        ("title", "BYTES"),
        ("description", "BYTES"),
        ("brand", "BYTES"),
        ("category", "BYTES"),
        ("currency", "BYTES"),
        ("price", "FP64"),
    ] {
        assert!(
            inputs.contains(&(name.into(), datatype.into())),
            "{inputs:?}"
        );
    }
    assert_eq!(model["outputs"][0]["name"], "probability");
    assert_eq!(model["outputs"][0]["datatype"], "FP32");
    assert_eq!(model["outputs"][1]["name"], "decision");
    assert_eq!(model["outputs"][1]["datatype"], "BYTES");

    let ready = server.get("/v2/models/tiny/ready").await;
    assert_eq!(
        (ready.status, ready.json()["ready"].clone()),
        (StatusCode::OK, json!(true))
    );
    let versioned = server
        .get(&format!("/v2/models/tiny/versions/{}", info.version))
        .await;
    assert_eq!(versioned.status, StatusCode::OK);
    let versioned = server
        .get(&format!("/v2/models/tiny/versions/{}/ready", info.version))
        .await;
    assert_eq!(versioned.status, StatusCode::OK);

    for path in [
        "/v2/models/nope",
        "/v2/models/nope/ready",
        "/v2/models/tiny/versions/0/ready",
        "/v2/models/tiny/versions/0",
    ] {
        server
            .get(path)
            .await
            .assert_error(StatusCode::NOT_FOUND, None);
    }
    server
        .post_json("/v2/models/nope/infer", &infer_body())
        .await
        .assert_error(StatusCode::NOT_FOUND, None);

    // Draining: readiness turns false, liveness stays.
    server.state.begin_shutdown();
    let ready = server.get("/v2/health/ready").await;
    assert_eq!(
        (ready.status, ready.json()),
        (StatusCode::SERVICE_UNAVAILABLE, json!({"ready": false}))
    );
    assert_eq!(
        server.get("/v2/models/tiny/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(server.get("/v2/health/live").await.status, StatusCode::OK);
}

#[tokio::test]
async fn v2_infer_matches_v1_scores() {
    let server = server();
    let answer = server
        .post_json("/v2/models/tiny/infer", &infer_body())
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let info = server.state.model_info();
    assert_eq!(body["model_name"], "tiny");
    assert_eq!(body["model_version"], info.version.as_str());
    assert_eq!(body["id"], "req-7");
    let outputs = body["outputs"].as_array().unwrap();
    assert_eq!(outputs[0]["name"], "probability");
    assert_eq!(outputs[0]["datatype"], "FP32");
    assert_eq!(outputs[0]["shape"], json!([2]));
    assert_eq!(outputs[1]["name"], "decision");
    assert_eq!(outputs[1]["datatype"], "BYTES");
    assert_eq!(outputs[1]["shape"], json!([2]));

    let v1 = server
        .post_json(
            "/v1/score",
            &json!({"listings": [fake_rolex(), {
            "title": "Irontek ceramic coffee mug set of 4 green", "description": "",
            "price": 37.46, "currency": "USD", "brand": "Irontek", "category": "home"}]}),
        )
        .await
        .json();
    for row in 0..2 {
        let p2 = outputs[0]["data"][row].as_f64().unwrap();
        let p1 = v1["results"][row]["probability"].as_f64().unwrap();
        assert!((p1 - p2).abs() < 1e-6, "row {row}: v1 {p1} vs v2 {p2}");
        assert_eq!(outputs[1]["data"][row], v1["results"][row]["decision"]);
    }

    // FP32 price, nested data, only the decision output, and the versioned route.
    let mut body = infer_body();
    body["inputs"][2] =
        json!({"name": "price", "shape": [2, 1], "datatype": "FP32", "data": [[45.0], [37.46]]});
    body["outputs"] = json!([{"name": "decision", "parameters": {"binary_data": false}}]);
    let path = format!("/v2/models/tiny/versions/{}/infer", info.version);
    let answer = server.post_json(&path, &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let outputs = answer.json()["outputs"].clone();
    assert_eq!(outputs.as_array().unwrap().len(), 1);
    assert_eq!(outputs[0]["name"], "decision");
    assert_eq!(outputs[0]["data"][0], v1["results"][0]["decision"]);

    // Only a title is needed.
    let minimal = json!({"inputs": [{"name": "title", "shape": [1, 1], "datatype": "BYTES", "data": [["mug"]]}]});
    let answer = server.post_json("/v2/models/tiny/infer", &minimal).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(answer.json().get("id").is_none());
}

#[tokio::test]
async fn v2_infer_errors_name_the_input() {
    let server = server_with(|c| c.max_batch_listings = 2, StateOptions::default());
    let title = |n: usize| json!({"name": "title", "shape": [n], "datatype": "BYTES", "data": vec!["mug"; n]});
    let cases: Vec<(Value, &str)> = vec![
        (json!({"inputs": []}), "title"),
        (
            json!({"inputs": [{"name": "brand", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}),
            "title",
        ),
        (
            json!({"inputs": [title(1), {"name": "brand", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]}]}),
            "brand.shape",
        ),
        (
            json!({"inputs": [{"name": "title", "shape": [3], "datatype": "BYTES", "data": ["a", "b"]}]}),
            "title.shape",
        ),
        (
            json!({"inputs": [{"name": "title", "shape": [1], "datatype": "FP32", "data": [1.0]}]}),
            "title.datatype",
        ),
        (
            json!({"inputs": [{"name": "title", "shape": [1], "datatype": "BYTES", "data": [7]}]}),
            "title[0]",
        ),
        (
            json!({"inputs": [{"name": "title", "shape": [1], "datatype": "BYTES", "data": "mug"}]}),
            "title.data",
        ),
        (
            json!({"inputs": [title(1), {"name": "colour", "shape": [1], "datatype": "BYTES", "data": ["red"]}]}),
            "inputs[1].name",
        ),
        (json!({"inputs": [title(1), title(1)]}), "inputs[1].name"),
        (
            json!({"inputs": [title(1), {"name": "price", "shape": [1], "datatype": "BYTES", "data": ["3"]}]}),
            "price.datatype",
        ),
        (
            json!({"inputs": [title(2),
            {"name": "price", "shape": [2], "datatype": "FP64", "data": [3.0, -1.0]},
            {"name": "currency", "shape": [2], "datatype": "BYTES", "data": ["USD", "USD"]}]}),
            "price[1]",
        ),
        (
            json!({"inputs": [title(1),
            {"name": "price", "shape": [1], "datatype": "FP64", "data": [3.0]},
            {"name": "currency", "shape": [1], "datatype": "BYTES", "data": ["XYZ"]}]}),
            "currency[0]",
        ),
        (
            json!({"inputs": [title(1)], "outputs": [{"name": "reasons"}]}),
            "outputs[0].name",
        ),
        (json!({"inputs": [title(3)]}), "title"),
        (
            json!({"inputs": [{"name": "title", "shape": "2", "datatype": "BYTES", "data": ["a"]}]}),
            "inputs[0].shape",
        ),
        (
            json!({"inputs": [{"name": "title", "shape": [9223372036854775807_i64, 2], "datatype": "BYTES", "data": ["a"]}]}),
            "title.shape",
        ),
        (json!({"id": 5, "inputs": [title(1)]}), "id"),
    ];
    for (body, field) in cases {
        let answer = server.post_json("/v2/models/tiny/infer", &body).await;
        answer.assert_error(StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    server
        .post_json("/v2/models/tiny/infer", &json!({"outputs": []}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, None);
}

// ---------------------------------------------------------------- operations routes

#[tokio::test]
async fn metrics_count_requests_batches_and_the_model() {
    let server = server();
    assert_eq!(
        server.post_json("/v1/score", &fake_rolex()).await.status,
        StatusCode::OK
    );
    server.post_json("/v1/score", &json!({})).await;
    let answer = server.get("/metrics").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = answer.text();
    let info = server.state.model_info();
    for expected in [
        r#"knockoff_http_requests_total{route="/v1/score",method="POST",status="200"} 1"#
            .to_string(),
        r#"knockoff_http_requests_total{route="/v1/score",method="POST",status="422"} 1"#
            .to_string(),
        r#"knockoff_rejected_requests_total{route="/v1/score",reason="invalid"} 1"#.to_string(),
        r#"knockoff_http_request_duration_seconds_bucket{route="/v1/score",le="#.to_string(),
        "knockoff_batch_listings_bucket{le=\"1\"} 1".to_string(),
        "knockoff_batch_duration_seconds_count 1".to_string(),
        "knockoff_probability_count 1".to_string(),
        "knockoff_known_term_share_count 1".to_string(),
        "knockoff_queue_depth 0".to_string(),
        "knockoff_queue_capacity 2048".to_string(),
        "knockoff_inflight_bytes 0".to_string(),
        format!(
            "knockoff_model_info{{name=\"tiny\",version=\"{}\"}} 1",
            info.version
        ),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }
    // Another router in the same process has its own counts.
    let other = self::server();
    let text = other.get("/metrics").await.text();
    assert!(!text.contains(r#"route="/v1/score""#), "{text}");
}

#[tokio::test]
async fn openapi_and_docs_describe_the_api() {
    let server = server();
    let answer = server.get("/openapi.json").await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/score",
        "/v2/models/{name}/infer",
        "/admin/reload",
        "/metrics",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    let docs = server.get("/docs").await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(docs.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = docs.text();
    assert!(html.contains("openapi.json"));
    // Self-contained: nothing is fetched from another host.
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "{html}"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let server = server();
    server
        .get("/v3/nothing")
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    server
        .get("/v1/score")
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, None);
    server
        .post("/v2/health/live", "{}")
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, None);
    server
        .send(request(Method::DELETE, "/admin/reload", Body::empty()))
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED, None);
}

// ---------------------------------------------------------------- admin

#[tokio::test]
async fn admin_is_disabled_without_a_token() {
    let server = server();
    server
        .reload(Some(TOKEN), "")
        .await
        .assert_error(StatusCode::FORBIDDEN, None);
    server
        .reload(None, "")
        .await
        .assert_error(StatusCode::FORBIDDEN, None);
}

#[tokio::test]
async fn admin_needs_the_right_bearer_token() {
    let server = server_with(with_admin, StateOptions::default());
    let answer = server.reload(None, "").await;
    answer.assert_error(StatusCode::UNAUTHORIZED, None);
    assert!(answer.headers[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    server
        .reload(Some("test-admin-token-012345678"), "")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, None);
    let basic = Request::builder()
        .method(Method::POST)
        .uri("/admin/reload")
        .header(header::AUTHORIZATION, format!("Basic {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    server
        .send(basic)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, None);
    // The scheme is case-insensitive, as HTTP says.
    let lower = Request::builder()
        .method(Method::POST)
        .uri("/admin/reload")
        .header(header::AUTHORIZATION, format!("bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(server.send(lower).await.status, StatusCode::OK);
}

#[tokio::test]
async fn reload_swaps_in_a_new_model() {
    let server = server_with(with_admin, StateOptions::default());
    let old = server.state.model_info();
    let other = common::tiny_model_dir_named("tiny-b", Some("v2"));
    let path = other.path().to_str().unwrap();
    let answer = server
        .reload(Some(TOKEN), &json!({"model": path}).to_string())
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["model"], json!({"name": "tiny-b", "version": "v2"}));
    assert_eq!(
        body["previous"],
        json!({"name": old.name, "version": old.version})
    );
    assert_eq!(body["path"], path);

    let scored = server.post_json("/v1/score", &mug()).await.json();
    assert_eq!(scored["model"]["name"], "tiny-b");
    assert_eq!(server.get("/v2/models/tiny-b").await.status, StatusCode::OK);
    server
        .get("/v2/models/tiny")
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.contains("knockoff_model_info{name=\"tiny-b\",version=\"v2\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "knockoff_model_info{{name=\"tiny\",version=\"{}\"}} 0",
        old.version
    )));
    assert!(metrics.contains("knockoff_model_reloads_total{result=\"success\"} 1"));

    // Without a body, the current model's directory is loaded again.
    let answer = server.reload(Some(TOKEN), "").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["model"]["name"], "tiny-b");
}

#[tokio::test]
async fn a_bad_model_is_refused_and_the_old_one_keeps_serving() {
    let server = server_with(with_admin, StateOptions::default());
    let missing = server
        .reload(Some(TOKEN), r#"{"model": "/nonexistent/knockoff-model"}"#)
        .await;
    let error = missing.assert_error(StatusCode::UNPROCESSABLE_ENTITY, Some("model"));
    assert!(
        error["error"].as_str().unwrap().contains("not found"),
        "{error}"
    );

    // A copy whose weights do not match their checksum.
    let corrupt = common::tiny_model_dir_named("tiny-corrupt", None);
    std::fs::write(corrupt.path().join("model.safetensors"), b"not weights").unwrap();
    let body = json!({"model": corrupt.path()}).to_string();
    let error = server
        .reload(Some(TOKEN), &body)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, Some("model"));
    assert!(
        error["error"].as_str().unwrap().contains("corrupt"),
        "{error}"
    );

    for (body, field) in [
        (r#"{"model": 5}"#, Some("model")),
        (r#"{"model": ""}"#, Some("model")),
        (r#"{"path": "x"}"#, Some("path")),
    ] {
        server
            .reload(Some(TOKEN), body)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, field);
    }
    server
        .reload(Some(TOKEN), "{")
        .await
        .assert_error(StatusCode::BAD_REQUEST, None);

    assert_eq!(server.model_name(), "tiny");
    let scored = server.post_json("/v1/score", &mug()).await;
    assert_eq!(scored.status, StatusCode::OK);
    assert_eq!(scored.json()["model"]["name"], "tiny");
    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.contains("knockoff_model_reloads_total{result=\"refused\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn requests_in_flight_finish_on_the_model_that_accepted_them() {
    let server = server_with(with_admin, StateOptions { start_paused: true });
    let app = server.app.clone();
    let accepted = tokio::spawn(async move {
        send_on(
            app,
            request(Method::POST, "/v1/score", fake_rolex().to_string()),
        )
        .await
    });
    let queue = server.state.queue();
    wait_until("the request to be queued", || queue.depth() == 1).await;

    let other = common::tiny_model_dir_named("tiny-b", None);
    let body = json!({"model": other.path()}).to_string();
    let answer = server.reload(Some(TOKEN), &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(server.model_name(), "tiny-b");

    queue.resume();
    let answer = accepted.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["model"]["name"], "tiny");
    let after = server.post_json("/v1/score", &fake_rolex()).await.json();
    assert_eq!(after["model"]["name"], "tiny-b");
}

// ---------------------------------------------------------------- graceful shutdown

/// Serves `server` on a real loopback port with a shutdown trigger, and sends one score
/// request from another thread (it stays queued while the model thread is paused).
async fn serve_with_one_request_in_flight(
    server: &Server,
    timeout: Duration,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<Drained>>,
    std::thread::JoinHandle<std::io::Result<(u16, String)>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(serve(
        listener,
        server.state.clone(),
        async move {
            let _ = stopped.await;
        },
        timeout,
    ));
    let body = fake_rolex().to_string();
    let client =
        std::thread::spawn(move || common::http(addr, "POST", "/v1/score", &[], body.as_bytes()));
    let queue = server.state.queue();
    wait_until("the request to be queued", || queue.depth() == 1).await;
    (addr, stop, serving, client)
}

#[tokio::test]
async fn shutdown_stops_accepting_and_finishes_requests_in_flight() {
    let server = server_with(|_| {}, StateOptions { start_paused: true });
    let (addr, stop, serving, client) =
        serve_with_one_request_in_flight(&server, Duration::from_secs(30)).await;

    stop.send(()).unwrap();
    wait_until("readiness to turn false", || !server.state.is_ready()).await;
    // The listener closes: new connections are refused while the old one is served.
    wait_until("the listener to close", || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
    })
    .await;
    assert!(
        !serving.is_finished(),
        "shutdown must wait for the request in flight"
    );

    server.state.queue().resume();
    let (status, body) = tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(status, 200, "{body}");
    assert_eq!(serving.await.unwrap().unwrap(), Drained::Completely);
}

#[tokio::test]
async fn shutdown_is_bounded_by_its_timeout() {
    let server = server_with(|_| {}, StateOptions { start_paused: true });
    let (_addr, stop, serving, _client) =
        serve_with_one_request_in_flight(&server, Duration::from_millis(50)).await;
    stop.send(()).unwrap();
    // The model thread stays paused: the request can never finish, the timeout ends it.
    let drained = tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("serve returns after its shutdown timeout")
        .unwrap()
        .unwrap();
    assert_eq!(drained, Drained::TimedOut);
}

// ---------------------------------------------------------------- garbage

/// A random JSON value, biased towards the keys and shapes the routes look at.
fn random_json(rng: &mut StdRng, depth: u32) -> Value {
    const KEYS: [&str; 16] = [
        "id",
        "title",
        "description",
        "price",
        "currency",
        "brand",
        "category",
        "listings",
        "inputs",
        "outputs",
        "name",
        "shape",
        "datatype",
        "data",
        "model",
        "parameters",
    ];
    const STRINGS: [&str; 10] = [
        "",
        "title",
        "BYTES",
        "FP64",
        "FP32",
        "USD",
        "XYZ",
        "-1",
        "1e400",
        "\u{0}\u{ffff}ü😀",
    ];
    let leaf = depth == 0 || rng.random_bool(0.3);
    match rng.random_range(0..if leaf { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(rng.random_range(-1e12..1e12)),
        3 => json!(rng.random_range(i64::MIN..i64::MAX)),
        4 => json!(STRINGS[rng.random_range(0..STRINGS.len())]),
        5 => Value::Array(
            (0..rng.random_range(0..5))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.random_range(0..6))
                .map(|_| {
                    let key = KEYS[rng.random_range(0..KEYS.len())].to_string();
                    (key, random_json(rng, depth - 1))
                })
                .collect(),
        ),
    }
}

fn garbage_body(rng: &mut StdRng, round: usize) -> Vec<u8> {
    match round % 4 {
        0 => (0..rng.random_range(0..300))
            .map(|_| rng.random())
            .collect(),
        1 => random_json(rng, 4).to_string().into_bytes(),
        2 => {
            // A valid request with a few bytes flipped, dropped or duplicated.
            let mut bytes = if rng.random() {
                json!({"listings": [fake_rolex(), mug()]})
                    .to_string()
                    .into_bytes()
            } else {
                infer_body().to_string().into_bytes()
            };
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..bytes.len());
                match rng.random_range(0..3) {
                    0 => bytes[at] = rng.random(),
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, bytes[at]),
                }
            }
            bytes
        }
        _ => {
            let mut body = infer_body();
            body["inputs"][rng.random_range(0..6)] = random_json(rng, 3);
            body.to_string().into_bytes()
        }
    }
}

#[tokio::test]
async fn garbage_never_panics_and_always_answers_json() {
    let server = server_with(
        |c| {
            with_admin(c);
            c.max_body_bytes = 4096;
        },
        StateOptions::default(),
    );
    let mut rng = StdRng::seed_from_u64(0x6b6e_6f63);
    for round in 0..400 {
        let body = garbage_body(&mut rng, round);
        for route in ["/v1/score", "/v2/models/tiny/infer", "/admin/reload"] {
            let request = Request::builder()
                .method(Method::POST)
                .uri(route)
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::from(body.clone()))
                .unwrap();
            let answer = server.send(request).await;
            match answer.status {
                StatusCode::OK => {
                    answer.json();
                }
                StatusCode::BAD_REQUEST
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNPROCESSABLE_ENTITY => {
                    let body = answer.json();
                    assert!(body["error"].is_string(), "{body}");
                }
                other => panic!(
                    "{route} answered {other} to {:?}: {}",
                    String::from_utf8_lossy(&body),
                    answer.text()
                ),
            }
        }
    }
    // Still serving, and still the same model.
    let answer = server.post_json("/v1/score", &fake_rolex()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["model"]["name"], "tiny");
}

fn verdanne() -> Value {
    json!({"aliases": ["维丹妮"], "products": [
        {"name": "Aurora tote", "category": "bags", "list_price": 420.0, "currency": "EUR"},
        {"name": "Lumen wallet", "category": "bags", "list_price": 180.0, "currency": "eur"}]})
}

#[tokio::test]
async fn registered_brands_reach_scoring_at_once_and_tokens_are_checked() {
    let server = server_with(with_admin, StateOptions::default());
    let created = server
        .put_brand("Verdanne", Some(TOKEN), &verdanne().to_string())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let created = created.json();
    let brand_token = created["token"].as_str().unwrap().to_string();
    assert_eq!(created["products"][1]["currency"], "EUR");
    let registry = server.state.core().registry();
    assert_eq!(registry.len(), 1);
    assert_eq!(registry[0].name, "Verdanne");
    assert_eq!(registry[0].entry.aliases, ["维丹妮"]);

    // The brand's own token reads and replaces its entry (any spelling of its name).
    let own = server
        .authed(
            Method::GET,
            "/v1/brands/VER%20DANNE",
            Some(&brand_token),
            "",
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text());
    assert!(own.json().get("token").is_none());
    let mut cheaper = verdanne();
    cheaper["products"][0]["list_price"] = json!(400.0);
    let replaced = server
        .put_brand("verdanne", Some(&brand_token), &cheaper.to_string())
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text());
    assert!(replaced.json().get("token").is_none());
    assert_eq!(
        server.state.core().registry()[0].entry.products[0].list_price,
        400.0
    );

    // Another brand: 403 for this token; no or a wrong token: 401.
    assert_eq!(
        server
            .put_brand("Other", Some(TOKEN), &verdanne_free().to_string())
            .await
            .status,
        StatusCode::CREATED
    );
    for (method, path) in [
        (Method::GET, "/v1/brands/Other"),
        (Method::PUT, "/v1/brands/Other"),
        (Method::GET, "/v1/brands/Other/history"),
        (Method::GET, "/v1/brands"),
        (Method::DELETE, "/v1/brands/Verdanne"),
        (Method::PUT, "/v1/brands/Newcomer"),
    ] {
        let answer = server
            .authed(
                method.clone(),
                path,
                Some(&brand_token),
                &verdanne_free().to_string(),
            )
            .await;
        answer.assert_error(StatusCode::FORBIDDEN, None);
        for token in [None, Some("not-a-token-at-all")] {
            let answer = server.authed(method.clone(), path, token, "").await;
            answer.assert_error(StatusCode::UNAUTHORIZED, None);
        }
    }
    let history = server
        .authed(
            Method::GET,
            "/v1/brands/Verdanne/history",
            Some(&brand_token),
            "",
        )
        .await;
    let who: Vec<Value> = history.json()["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["who"].clone())
        .collect();
    assert_eq!(who, [json!("admin"), json!("brand:Verdanne")]);

    let deleted = server
        .authed(Method::DELETE, "/v1/brands/Verdanne", Some(TOKEN), "")
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text());
    let names: Vec<String> = server
        .state
        .core()
        .registry()
        .iter()
        .map(|b| b.name.clone())
        .collect();
    assert_eq!(names, ["Other"]);
    // The deleted brand's token is gone with it.
    server
        .authed(Method::GET, "/v1/brands/Verdanne", Some(&brand_token), "")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, None);
    server
        .authed(Method::GET, "/v1/brands/Verdanne", Some(TOKEN), "")
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
}

fn verdanne_free() -> Value {
    json!({"products": [{"name": "Plain mug", "list_price": 9.5, "currency": "USD"}]})
}

#[tokio::test]
async fn bad_brand_entries_are_422_naming_the_field_and_change_nothing() {
    let server = server_with(with_admin, StateOptions::default());
    assert_eq!(
        server
            .put_brand("Verdanne", Some(TOKEN), &verdanne().to_string())
            .await
            .status,
        StatusCode::CREATED
    );
    let product = |price: Value, currency: &str| json!({"name": "Aurora tote", "list_price": price, "currency": currency});
    let cases = [
        (
            "%20",
            json!({"products": [product(json!(1), "EUR")]}),
            "name",
        ),
        (
            "Nova",
            json!({"aliases": [""], "products": [product(json!(1), "EUR")]}),
            "aliases[0]",
        ),
        (
            "Nova",
            json!({"aliases": ["ok", "V E R D A N N E"], "products": [product(json!(1), "EUR")]}),
            "aliases[1]",
        ),
        (
            "维丹妮",
            json!({"products": [product(json!(1), "EUR")]}),
            "name",
        ),
        ("Nova", json!({"products": []}), "products"),
        (
            "Nova",
            json!({"products": [product(json!(-5), "EUR")]}),
            "products[0].list_price",
        ),
        (
            "Nova",
            json!({"products": [product(json!(1), "XYZ")]}),
            "products[0].currency",
        ),
        (
            "Nova",
            json!({"products": [product(json!("cheap"), "EUR")]}),
            "products[0].list_price",
        ),
        (
            "Nova",
            json!({"aliases": vec!["a"; 21].iter().enumerate().map(|(i, _)| format!("alias {i}")).collect::<Vec<_>>(), "products": [product(json!(1), "EUR")]}),
            "aliases",
        ),
        (
            "Nova",
            json!({"products": [product(json!(1), "EUR")], "colour": "red"}),
            "colour",
        ),
    ];
    let before = server
        .authed(Method::GET, "/v1/brands", Some(TOKEN), "")
        .await
        .json();
    for (name, body, field) in cases {
        let answer = server.put_brand(name, Some(TOKEN), &body.to_string()).await;
        answer.assert_error(StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    server
        .put_brand("Nova", Some(TOKEN), "{\"products\": [")
        .await
        .assert_error(StatusCode::BAD_REQUEST, None);
    let after = server
        .authed(Method::GET, "/v1/brands", Some(TOKEN), "")
        .await
        .json();
    assert_eq!(before, after);
    server
        .authed(Method::GET, "/v1/brands/Nova/history", Some(TOKEN), "")
        .await
        .assert_error(StatusCode::NOT_FOUND, None);
    assert_eq!(server.state.core().registry().len(), 1);
}

#[tokio::test]
async fn brand_writes_are_off_without_an_admin_token() {
    let server = server();
    for (method, path) in [
        (Method::PUT, "/v1/brands/Verdanne"),
        (Method::DELETE, "/v1/brands/Verdanne"),
        (Method::GET, "/v1/brands"),
    ] {
        server
            .authed(method, path, Some(TOKEN), &verdanne().to_string())
            .await
            .assert_error(StatusCode::FORBIDDEN, None);
    }
    server
        .authed(Method::GET, "/v1/brands/Verdanne", None, "")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, None);
}
