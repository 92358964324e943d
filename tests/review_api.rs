//! The reviewers' routes in-process (tower `oneshot`, no port): who may use them, the queue
//! filled by /v1/score and /v2 infer, reviews in, their export read back by
//! `knockoff::data::reviews` exactly as `knockoff-train --reviews` reads it, and every bad
//! input answered 4xx naming its field.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use knockoff::data::currency::CurrencyRates;
use knockoff::data::listing::FieldLimits;
use knockoff::data::reviews::read_reviews;
use knockoff::http::config::BearerToken;
use knockoff::http::{router, AppState, ServerConfig};
use serde_json::{json, Value};
use tower::ServiceExt;

const REVIEWER: &str = "reviewer-token-0123456789";
const ADMIN: &str = "admin-token-0123456789abc";

/// A router serving the tiny model made to decide `review` for every listing, with the
/// given tokens.
fn app(reviewer: bool, admin: bool) -> (axum::Router, AppState, tempfile::TempDir) {
    let dir = common::tiny_model_dir();
    let mut config = ServerConfig::new(dir.path());
    config.reviewer_token =
        reviewer.then(|| BearerToken::for_flag("reviewer-token", REVIEWER).unwrap());
    config.admin_token = admin.then(|| BearerToken::new(ADMIN).unwrap());
    let state = AppState::new(config, common::all_review_model()).unwrap();
    (router(state.clone()), state, dir)
}

/// Status, content type and body of one request.
async fn call(
    app: &axum::Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (StatusCode, String, String) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Value::Null => Body::empty(),
        body => Body::from(body.to_string()),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

/// `GET /v1/reviews{query}` with the reviewer token: the export's text.
async fn export(app: &axum::Router, query: &str) -> String {
    let path = format!("/v1/reviews{query}");
    let (status, _, text) = call(app, Method::GET, &path, Some(REVIEWER), &Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    text
}

async fn json_call(
    app: &axum::Router,
    method: Method,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let (status, _, text) = call(app, method, path, Some(REVIEWER), body).await;
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, value)
}

/// Asserts a 422 naming `field`; nothing else about the message.
async fn refused(app: &axum::Router, method: Method, path: &str, body: &Value, field: &str) {
    let (status, answer) = json_call(app, method, path, body).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{path} {body}: {answer}"
    );
    assert_eq!(answer["field"], field, "{path} {body}: {answer}");
}

fn listing(id: &str, title: &str, price: f64) -> Value {
    json!({"id": id, "title": title, "price": price, "currency": "USD", "brand": "Rolex",
           "category": "watches", "description": "boxed"})
}

#[tokio::test]
async fn review_routes_need_the_reviewer_or_admin_token() {
    let routes = [
        (Method::GET, "/v1/review-queue", Value::Null),
        (Method::GET, "/v1/reviews", Value::Null),
        (
            Method::POST,
            "/v1/reviews",
            json!({"id": "a", "label": "genuine", "reviewer": "kim"}),
        ),
    ];
    let (off, _, _dir) = app(false, false);
    for (method, path, body) in &routes {
        let (status, _, text) = call(&off, method.clone(), path, Some(REVIEWER), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {text}");
        assert!(text.contains("KNOCKOFF_REVIEWER_TOKEN"), "{text}");
    }
    let (both, _, _dir) = app(true, true);
    let (admin_only, _, _dir2) = app(false, true);
    for (method, path, body) in &routes {
        for token in [None, Some("wrong-token-0123456789")] {
            let (status, _, text) = call(&both, method.clone(), path, token, body).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {token:?}: {text}");
        }
        // The admin token alone opens the routes too; a reviewer token it does not know
        // does not.
        let (status, _, _) = call(&admin_only, method.clone(), path, Some(REVIEWER), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    for token in [REVIEWER, ADMIN] {
        let (status, _, text) = call(
            &both,
            Method::GET,
            "/v1/review-queue",
            Some(token),
            &Value::Null,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
    }
    let (status, _, _) = call(
        &admin_only,
        Method::GET,
        "/v1/reviews",
        Some(ADMIN),
        &Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn queue_then_reviews_then_an_export_that_training_reads() {
    let (app, state, _dir) = app(true, false);
    let listings = vec![
        listing("a", "Rolex Submariner 1:1 super clone", 45.0),
        listing("b", "Rolex Datejust with papers", 6100.0),
        listing("c", "Rolex Daytona AAA replica", 80.0),
        json!({"title": "Rolex watch box only", "price": 20, "currency": "USD"}),
    ];
    let (status, scored) = json_call(
        &app,
        Method::POST,
        "/v1/score",
        &json!({"listings": listings}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{scored}");
    let infer = json!({"inputs": [
        {"name": "title", "shape": [1], "datatype": "BYTES", "data": ["Rolex GMT clone"]},
        {"name": "price", "shape": [1], "datatype": "FP64", "data": [55.0]},
        {"name": "currency", "shape": [1], "datatype": "BYTES", "data": ["USD"]}]});
    let (status, inferred) = json_call(&app, Method::POST, "/v2/models/tiny/infer", &infer).await;
    assert_eq!(status, StatusCode::OK, "{inferred}");

    let (status, queue) = json_call(&app, Method::GET, "/v1/review-queue", &Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    let entries = queue["entries"].as_array().unwrap();
    assert_eq!(
        (entries.len(), queue["queued"].as_u64()),
        (5, Some(5)),
        "{queue}"
    );
    let block = f64::from(state.core().current_model().model.thresholds().block);
    let distance = |p: f64| ((p / (1.0 - p)).ln() - (block / (1.0 - block)).ln()).abs();
    let distances: Vec<f64> = entries
        .iter()
        .map(|e| distance(e["probability"].as_f64().unwrap()))
        .collect();
    assert!(
        distances.windows(2).all(|w| w[0] <= w[1] + 1e-6),
        "closest to the block threshold first: {distances:?}"
    );
    let a = entries
        .iter()
        .find(|e| e["id"] == "a")
        .expect("a is queued");
    assert_eq!(a["decision"], "review");
    assert_eq!(a["listing"]["title"], "Rolex Submariner 1:1 super clone");
    assert_eq!(a["model"]["name"], "tiny");
    assert_eq!(a["probability"], scored["results"][0]["probability"]);
    assert!(!a["reasons"].as_array().unwrap().is_empty());
    assert!(a["scored_at"].as_str().unwrap().ends_with('Z'));
    // Listings sent without an id (all of v2's) are queued under their content's id.
    let content: Vec<&Value> = entries
        .iter()
        .filter(|e| e["id"].as_str().unwrap().starts_with("content-"))
        .collect();
    assert_eq!(content.len(), 2);
    assert!(content.iter().all(|e| e["listing"]["id"] == e["id"]));
    let (_, two) = json_call(&app, Method::GET, "/v1/review-queue?limit=2", &Value::Null).await;
    assert_eq!(two["entries"].as_array().unwrap()[..], entries[..2]);

    // Reviews of queued ids need no listing; a listing sent along replaces the queued one.
    let reviews = json!({"reviews": [
        {"id": "a", "label": "counterfeit", "reviewer": "kim", "note": " fake box "},
        {"id": "b", "label": "genuine", "reviewer": "lee",
         "listing": listing("b", "Rolex Datejust 41 with papers", 6100.0)},
        {"id": "new-1", "label": "counterfeit", "reviewer": "kim",
         "listing": {"title": "Rolex Yacht-Master copy", "price": 70, "currency": "USD"}},
    ]});
    let (status, stored) = json_call(&app, Method::POST, "/v1/reviews", &reviews).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    assert_eq!(
        stored,
        json!({"stored": 3, "left_queue": 2, "scored_now": 1})
    );
    let (_, queue) = json_call(&app, Method::GET, "/v1/review-queue", &Value::Null).await;
    let left: Vec<&str> = queue["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(left.len(), 3);
    assert!(!left.contains(&"a") && !left.contains(&"b"), "{left:?}");
    // Scored again unchanged, a reviewed listing does not come back.
    json_call(&app, Method::POST, "/v1/score", &listings[0]).await;
    let (_, queue) = json_call(&app, Method::GET, "/v1/review-queue", &Value::Null).await;
    assert_eq!(queue["queued"], 3);
    // A single review object works too, and a correction needs no listing either.
    let (status, stored) = json_call(
        &app,
        Method::POST,
        "/v1/reviews",
        &json!({"id": "a", "label": "genuine", "reviewer": "ana"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    assert_eq!(stored["left_queue"], 0);

    let (status, content_type, exported) = call(
        &app,
        Method::GET,
        "/v1/reviews",
        Some(REVIEWER),
        &Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/x-ndjson");
    let lines: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{exported}");
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[0]["note"], "fake box");
    assert_eq!(lines[0]["probability"], a["probability"]);
    assert_eq!(lines[0]["model_version"], a["model"]["version"]);
    assert_eq!(lines[1]["title"], "Rolex Datejust 41 with papers");
    assert_eq!(lines[2]["id"], "new-1");
    assert!(
        lines[2]["probability"].as_f64().is_some(),
        "scored when reviewed"
    );

    // The export is what `knockoff-train --reviews` reads, unchanged.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export.jsonl");
    std::fs::write(&path, &exported).unwrap();
    let reviewed = read_reviews(&path, &CurrencyRates::default(), &FieldLimits::default()).unwrap();
    let summary: Vec<(&str, bool)> = reviewed
        .iter()
        .map(|r| (r.listing.id.as_str(), r.counterfeit))
        .collect();
    assert_eq!(summary, [("a", false), ("b", false), ("new-1", true)]);

    // `since` and `limit` narrow it.
    assert_eq!(export(&app, "?limit=1").await.lines().count(), 1);
    assert_eq!(export(&app, "?since=2999-01-01T00:00:00Z").await, "");
    let all = export(&app, "?since=2000-01-01T00:00:00%2B02:00").await;
    assert_eq!(all, exported);
    let metrics = state.metrics().render();
    assert!(
        metrics.contains("knockoff_reviews_total{label=\"counterfeit\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_stores_nothing() {
    let (app, _, _dir) = app(true, false);
    json_call(
        &app,
        Method::POST,
        "/v1/score",
        &listing("q", "Rolex clone", 50.0),
    )
    .await;
    let good = json!({"id": "q", "label": "genuine", "reviewer": "kim"});
    let post = |body: Value, field: &'static str| {
        let app = app.clone();
        async move { refused(&app, Method::POST, "/v1/reviews", &body, field).await }
    };
    post(
        json!({"reviews": [good, {"id": "unseen", "label": "genuine", "reviewer": "kim"}]}),
        "reviews[1].listing",
    )
    .await;
    post(
        json!({"reviews": [good, {"id": "q", "label": "fake", "reviewer": "kim"}]}),
        "reviews[1].label",
    )
    .await;
    post(json!({"id": "q", "label": "genuine"}), "reviewer").await;
    post(
        json!({"id": "q", "label": "genuine", "reviewer": "  "}),
        "reviewer",
    )
    .await;
    post(
        json!({"id": "", "label": "genuine", "reviewer": "kim"}),
        "id",
    )
    .await;
    post(
        json!({"id": "q", "label": "genuine", "reviewer": "kim", "extra": 1}),
        "extra",
    )
    .await;
    post(
        json!({"id": "q", "label": "genuine", "reviewer": "kim", "note": "x".repeat(5001)}),
        "note",
    )
    .await;
    post(
        json!({"reviews": [good, {"id": "z", "label": "genuine", "reviewer": "kim",
        "listing": {"title": "watch", "price": -3, "currency": "USD"}}]}),
        "reviews[1].listing.price",
    )
    .await;
    post(
        json!({"reviews": [{"id": "z", "label": "genuine", "reviewer": "kim",
        "listing": {"title": "   "}}]}),
        "reviews[0].listing.title",
    )
    .await;
    post(
        json!({"reviews": [{"id": "z", "label": "genuine", "reviewer": "kim",
        "listing": {"id": "other", "title": "watch"}}]}),
        "reviews[0].listing.id",
    )
    .await;
    post(json!({"reviews": []}), "reviews").await;
    post(json!({"reviews": {"id": "q"}}), "reviews").await;
    post(json!({"reviews": [7]}), "reviews[0]").await;
    post(json!({"reviews": [good], "more": []}), "more").await;
    for (body, status) in [
        (json!("["), StatusCode::UNPROCESSABLE_ENTITY),
        (Value::Null, StatusCode::BAD_REQUEST),
    ] {
        let answer = call(&app, Method::POST, "/v1/reviews", Some(REVIEWER), &body).await;
        assert_eq!(answer.0, status, "{body}: {}", answer.2);
    }
    for (path, field) in [
        ("/v1/review-queue?limit=0", "limit"),
        ("/v1/review-queue?limit=1001", "limit"),
        ("/v1/review-queue?limit=ten", "limit"),
        ("/v1/review-queue?lmit=5", "lmit"),
        ("/v1/reviews?since=yesterday", "since"),
        ("/v1/reviews?limit=0", "limit"),
        ("/v1/reviews?from=2026-01-01T00:00:00Z", "from"),
    ] {
        refused(&app, Method::GET, path, &Value::Null, field).await;
    }
    // Every refused batch left nothing behind; the queue still holds `q`.
    assert_eq!(export(&app, "").await, "");
    let (_, queue) = json_call(&app, Method::GET, "/v1/review-queue", &Value::Null).await;
    assert_eq!(queue["queued"], 1);
}

/// The real binary: reviews acknowledged with 201 survive `kill -9`, and training reads
/// them from the store file while the server runs.
#[test]
fn acknowledged_reviews_survive_kill_9_and_train_from_the_store() {
    use common::server::{start, START_TIMEOUT};
    let model = common::all_review_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("reviews.db");
    let args = ["--store", store.to_str().unwrap()];
    let env = [("KNOCKOFF_REVIEWER_TOKEN", REVIEWER)];
    let mut server = start(model.path(), &args, &env);
    server.wait_ready();
    let listings: Vec<Value> = (0..20)
        .map(|i| {
            listing(
                &format!("k{i}"),
                &format!("Rolex Submariner clone no {i}"),
                40.0 + f64::from(i),
            )
        })
        .collect();
    let (status, _) = server.post("/v1/score", &json!({"listings": listings}));
    assert_eq!(status, 200);
    let (status, queue) = server.call("GET", "/v1/review-queue?limit=1000", Some(REVIEWER), "");
    assert_eq!(
        (status, queue["queued"].as_u64()),
        (200, Some(20)),
        "{queue}"
    );
    let mut acknowledged = 0;
    for chunk in listings.chunks(5) {
        let reviews: Vec<Value> = chunk
            .iter()
            .map(|l| json!({"id": l["id"], "label": "genuine", "reviewer": "kim"}))
            .collect();
        let body = json!({"reviews": reviews}).to_string();
        let (status, stored) = server.call("POST", "/v1/reviews", Some(REVIEWER), &body);
        assert_eq!(status, 201, "{stored}");
        acknowledged += stored["stored"].as_u64().unwrap();
    }
    server.child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    server.wait_exit(START_TIMEOUT);

    let server = start(model.path(), &args, &env);
    server.wait_ready();
    let (status, text) = common::http(
        server.addr,
        "GET",
        "/v1/reviews",
        &[("Authorization", &format!("Bearer {REVIEWER}"))],
        b"",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(text.lines().count() as u64, acknowledged);
    let (_, queue) = server.call("GET", "/v1/review-queue", Some(REVIEWER), "");
    assert_eq!(queue["queued"], 0, "reviewed listings left the queue");

    // Training reads the reviews from the store the running server holds open.
    let options = knockoff::train::TrainOptions {
        reviews: Some(store.clone()),
        ..common::tiny_options()
    };
    let outcome = knockoff::train::train(&options, &indicatif::ProgressBar::hidden()).unwrap();
    let used = outcome.metrics.reviews.unwrap();
    assert_eq!((used.used, used.added), (20, 20));
}
