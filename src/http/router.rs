//! The whole HTTP API as one axum [`Router`]: every route, the body limit, admission by
//! bytes in flight, the metrics middleware, and the JSON 404/405 fallbacks.

use super::error::ServerError;
use super::state::AppState;
use super::{admin, admission, brands, metrics, openapi, reviews, v1, v2};
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{get, post, put};
use axum::Router;

/// The whole HTTP API over `state`, ready for `axum::serve` or in-process `oneshot` calls.
pub fn router(state: AppState) -> Router {
    let limit = state.config().max_body_bytes;
    Router::new()
        .route("/v1/score", post(v1::score))
        .route("/v1/brands", get(brands::list_brands))
        .route(
            "/v1/brands/{name}",
            put(brands::put_brand)
                .get(brands::get_brand)
                .delete(brands::delete_brand),
        )
        .route("/v1/brands/{name}/history", get(brands::brand_history))
        .merge(review_routes(state.clone()))
        .route("/v2", get(v2::server_metadata))
        .route("/v2/health/live", get(v2::live))
        .route("/v2/health/ready", get(v2::ready))
        .route("/v2/models/{name}", get(v2::model_metadata))
        .route("/v2/models/{name}/ready", get(v2::model_ready))
        .route("/v2/models/{name}/infer", post(v2::infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(v2::model_version_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(v2::model_version_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(v2::version_infer),
        )
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/docs", get(openapi::docs))
        .route(
            "/admin/reload",
            post(admin::reload).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                admin::require_admin,
            )),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        // Inside the metrics layer, so its 429s are counted like any other answer.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admission::admit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics().clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// The reviewers' routes, each behind the reviewer (or admin) token.
fn review_routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/review-queue", get(reviews::review_queue))
        .route(
            "/v1/reviews",
            post(reviews::post_reviews).get(reviews::export_reviews),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            reviews::require_reviewer,
        ))
}

async fn not_found(uri: Uri) -> ServerError {
    let path: String = uri.path().chars().take(200).collect();
    ServerError::NotFound(format!("no route for `{path}`; see /docs"))
}

async fn method_not_allowed(method: Method) -> ServerError {
    tracing::debug!(%method, "method not allowed");
    ServerError::MethodNotAllowed
}
