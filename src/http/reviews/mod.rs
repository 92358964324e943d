//! The reviewers' routes: the review queue (`GET /v1/review-queue`), reviews in
//! (`POST /v1/reviews`) and out as JSON Lines (`GET /v1/reviews`), all behind the reviewer
//! token or the admin token.

use super::admin::bearer;
use super::error::{json_error, value_at, ErrorBody, ServerError};
use super::state::AppState;
use super::v1::DecisionSchema;
use crate::data::listing::{Listing, RawId, RawListing, MAX_ID_CHARS};
use crate::data::reviews::{ReviewLabel, ReviewRecord};
use crate::model::Reason;
use crate::serve::{ModelInfo, ScoringCore};
use crate::store::reviews::{now, timestamp, KnownListing, QueueEntry, StoredReview, EXPORT_PAGE};
use crate::store::StoreError;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

mod input;
use input::{check, join, parse_reviews, Pending};

/// Entries `GET /v1/review-queue` returns when no `limit` is given.
pub const DEFAULT_QUEUE_LIMIT: usize = 50;
/// Most entries one `GET /v1/review-queue` returns.
pub const MAX_QUEUE_LIMIT: usize = 1000;
/// Longest reviewer name accepted.
pub const MAX_REVIEWER_CHARS: usize = 200;
/// Longest note accepted.
pub const MAX_NOTE_CHARS: usize = 5_000;
/// The content type of the export.
pub const NDJSON: &str = "application/x-ndjson";

/// Middleware for the review routes: a bearer token that is the reviewer token or the admin
/// token, checked before the body is read. With neither configured the routes are off (403).
pub async fn require_reviewer(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ServerError> {
    let config = state.config();
    let tokens: Vec<_> = [&config.reviewer_token, &config.admin_token]
        .into_iter()
        .flatten()
        .collect();
    if tokens.is_empty() {
        return Err(ServerError::ReviewsDisabled);
    }
    match bearer(request.headers()) {
        Some(presented) if tokens.iter().any(|t| t.matches(presented)) => {
            Ok(next.run(request).await)
        }
        _ => Err(ServerError::Unauthorized),
    }
}

/// A listing waiting for review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueuedListing {
    pub id: String,
    /// The listing in the listing schema, as validated (text trimmed, empty fields left out).
    pub listing: RawListing,
    pub probability: f32,
    #[schema(value_type = DecisionSchema)]
    pub decision: crate::decision::Decision,
    /// Why the model scored it so (empty for listings scored through the v2 protocol).
    pub reasons: Vec<Reason>,
    /// The model that scored it.
    pub model: ModelInfo,
    /// RFC 3339 time it was scored.
    pub scored_at: String,
}

/// `GET /v1/review-queue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewQueue {
    /// Most useful first: closest to the block threshold in log-odds.
    pub entries: Vec<QueuedListing>,
    /// Listings in the queue now, these included.
    pub queued: usize,
}

/// One review as posted.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    /// The reviewed listing's id.
    pub id: RawId,
    pub label: ReviewLabel,
    /// Who reviewed it (a name or an id; 1 to 200 characters).
    pub reviewer: String,
    #[serde(default)]
    pub note: Option<String>,
    /// The listing; may be left out when the server queued this id (or has an earlier
    /// review of it).
    #[serde(default)]
    pub listing: Option<RawListing>,
}

/// `{"reviews": [...]}`: several reviews in one request, stored all or none.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewBatch {
    pub reviews: Vec<ReviewInput>,
}

/// A `POST /v1/reviews` body: one review, or a batch.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ReviewsRequest {
    Batch(ReviewBatch),
    One(Box<ReviewInput>),
}

/// The answer of `POST /v1/reviews`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewsStored {
    /// Reviews stored (durably: on disk before this answer).
    pub stored: usize,
    /// Of their ids, how many were in the review queue and left it.
    pub left_queue: usize,
    /// Reviews of listings the queue did not hold, scored now for their probability.
    pub scored_now: usize,
}

/// The listings the model decided `review` and no one has reviewed yet.
#[utoipa::path(
    get,
    path = "/v1/review-queue",
    tag = "reviews",
    params(("limit" = Option<usize>, Query, description = "1 to 1000 entries (default 50)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Most useful first: closest to the block threshold in log-odds", body = ReviewQueue),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "No reviewer or admin token configured", body = ErrorBody),
        (status = 422, description = "A bad parameter (field names it)", body = ErrorBody),
    )
)]
pub async fn review_queue(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<ReviewQueue>, ServerError> {
    let params = query_params(query, &["limit"])?;
    let limit = limit(&params, Some(MAX_QUEUE_LIMIT))?.unwrap_or(DEFAULT_QUEUE_LIMIT);
    state.review_recorder().flush().await;
    let (entries, queued) = state
        .store()
        .blocking(move |store| Ok((store.review_queue(limit)?, store.review_queue_len()?)))
        .await?;
    Ok(Json(ReviewQueue {
        entries: entries.into_iter().map(queued_listing).collect(),
        queued,
    }))
}

fn queued_listing(entry: QueueEntry) -> QueuedListing {
    QueuedListing {
        id: entry.id,
        listing: entry.listing,
        probability: entry.probability,
        decision: entry.decision,
        reasons: entry.reasons,
        model: ModelInfo {
            name: entry.model_name,
            version: entry.model_version,
        },
        scored_at: timestamp(entry.scored_at),
    }
}

/// Store reviewers' labels: one review or `{"reviews": [...]}`, all or none.
#[utoipa::path(
    post,
    path = "/v1/reviews",
    tag = "reviews",
    request_body(content = ReviewsRequest, description = "One review, or {\"reviews\": [...]} (up to --max-batch-listings)"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored durably; the reviewed ids left the queue", body = ReviewsStored),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "No reviewer or admin token configured", body = ErrorBody),
        (status = 422, description = "A review is invalid (field names it, e.g. reviews[3].listing); nothing is stored", body = ErrorBody),
        (status = 429, description = "Scoring queue full (a listing had to be scored); see Retry-After", body = ErrorBody),
    )
)]
pub async fn post_reviews(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ReviewsStored>), ServerError> {
    let body = state.body(body)?;
    let inputs = parse_reviews(&body, state.config().max_batch_listings)?;
    let model = state.core().current_model();
    let pending = inputs
        .into_iter()
        .map(|(prefix, input)| check(&model, prefix, input))
        .collect::<Result<Vec<_>, _>>()?;

    // Entries scored a moment ago may still be on their way to the queue.
    state.review_recorder().flush().await;
    let ids: Vec<String> = pending.iter().map(|p| p.id.clone()).collect();
    let known = state
        .store()
        .blocking(move |store| store.known_listings(&ids))
        .await?;

    let Records {
        mut records,
        to_score,
    } = records_for(pending, &known)?;
    let scored_now = to_score.len();
    if !to_score.is_empty() {
        let (indices, listings): (Vec<usize>, Vec<Listing>) = to_score.into_iter().unzip();
        let scored = state.core().score(Arc::clone(&model), listings, 0).await?;
        for (index, score) in indices.into_iter().zip(scored) {
            records[index].probability = Some(score.probability);
            records[index].model_version = Some(model.version().to_string());
        }
    }

    let labels: Vec<ReviewLabel> = records.iter().map(|r| r.label).collect();
    let stored = records.len();
    let left_queue = state
        .store()
        .blocking(move |store| store.add_reviews(&records))
        .await?;
    for label in labels {
        state.metrics().record_review(label.as_str());
    }
    tracing::info!(stored, left_queue, scored_now, "reviews stored");
    Ok((
        StatusCode::CREATED,
        Json(ReviewsStored {
            stored,
            left_queue,
            scored_now,
        }),
    ))
}

/// Each review as it will be stored: its listing, probability and model version from the
/// queue (or an earlier review) when the server has the id, else from the listing given,
/// which is then still to be scored (returned with its record's index).
fn records_for(
    pending: Vec<Pending>,
    known: &HashMap<String, KnownListing>,
) -> Result<Records, ServerError> {
    let mut records = Vec::with_capacity(pending.len());
    let mut to_score: Vec<(usize, Listing)> = Vec::new();
    for (index, review) in pending.into_iter().enumerate() {
        let known = known.get(&review.id);
        let queued = known.filter(|k| k.queued);
        let (listing, model_version, probability) = match (review.listing, queued, known) {
            (Some(listing), Some(q), _) => (
                RawListing::from(&listing),
                q.model_version.clone(),
                q.probability,
            ),
            (None, Some(q), _) | (None, None, Some(q)) => {
                (q.listing.clone(), q.model_version.clone(), q.probability)
            }
            (Some(listing), None, _) => {
                let raw = RawListing::from(&listing);
                to_score.push((index, listing));
                (raw, None, None)
            }
            (None, None, None) => {
                let id: String = review.id.chars().take(100).collect();
                return Err(ServerError::invalid(
                    join(&review.prefix, "listing"),
                    format!(
                        "{}: is required: the server has no listing `{id}` in its review queue \
                     (never decided review, already evicted as the oldest, or scored by \
                     another server)",
                        join(&review.prefix, "listing")
                    ),
                ));
            }
        };
        records.push(ReviewRecord {
            listing,
            label: review.label,
            reviewer: review.reviewer,
            reviewed_at: now(),
            model_version,
            probability,
            note: review.note,
        });
    }
    Ok(Records { records, to_score })
}

/// Reviews ready to store, and the listings among them still to be scored.
struct Records {
    records: Vec<ReviewRecord>,
    /// Listings given with their review that the server never scored, by record index.
    to_score: Vec<(usize, Listing)>,
}

/// Every review, oldest first, as JSON Lines: the listing schema's fields plus `label`,
/// `reviewer`, `reviewed_at`, `model_version`, `probability` and `note`: what
/// `knockoff-train --reviews` reads.
#[utoipa::path(
    get,
    path = "/v1/reviews",
    tag = "reviews",
    params(
        ("since" = Option<String>, Query, description = "Only reviews given at or after this RFC 3339 time"),
        ("limit" = Option<usize>, Query, description = "At most this many reviews (the oldest first)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One review a line (application/x-ndjson)", body = ReviewRecord, content_type = "application/x-ndjson"),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "No reviewer or admin token configured", body = ErrorBody),
        (status = 422, description = "A bad parameter (field names it)", body = ErrorBody),
    )
)]
pub async fn export_reviews(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ServerError> {
    let params = query_params(query, &["since", "limit"])?;
    let since = match params.get("since") {
        None => None,
        Some(text) => Some(
            DateTime::parse_from_rfc3339(text.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    ServerError::invalid(
                        "since",
                        format!(
                            "since: must be an RFC 3339 time such as 2026-01-02T10:00:00Z ({e})"
                        ),
                    )
                })?,
        ),
    };
    let limit = limit(&params, None)?.unwrap_or(usize::MAX);
    let store = state.store().clone();
    // The export is of the reviews given up to now; later ones wait for the next export.
    let until = store.blocking(|store| store.last_review()).await?;
    let page = move |after: i64, left: usize| {
        let store = store.clone();
        async move {
            store
                .blocking(move |store| {
                    store.reviews_page(since, after, until, left.min(EXPORT_PAGE))
                })
                .await
        }
    };
    // The first page is read before answering, so a failing store is a 500, not a cut body.
    let first = page(0, limit).await?;
    // Each step sends one page; the next is read after it, until a short page or the limit.
    let stream =
        futures_util::stream::unfold((ExportStep::Page(first), limit), move |(next, left)| {
            let page = page.clone();
            async move {
                let rows = match next {
                    ExportStep::Done => return None,
                    ExportStep::Page(rows) => rows,
                    ExportStep::After(last) => match page(last, left).await {
                        Ok(rows) => rows,
                        Err(e) => {
                            tracing::error!(error = %e, "review export failed part-way");
                            return Some((Err(e), (ExportStep::Done, 0)));
                        }
                    },
                };
                let (bytes, last) = lines(&rows)?;
                let full = rows.len() == left.min(EXPORT_PAGE);
                let left = left - rows.len();
                let next = if full && left > 0 {
                    ExportStep::After(last)
                } else {
                    ExportStep::Done
                };
                Some((Ok::<Bytes, StoreError>(bytes), (next, left)))
            }
        });
    Ok(([(header::CONTENT_TYPE, NDJSON)], Body::from_stream(stream)).into_response())
}

/// What the export sends next.
enum ExportStep {
    Page(Vec<StoredReview>),
    /// The page after this review's `seq`.
    After(i64),
    Done,
}

/// A page of reviews as JSON Lines, and the `seq` of its last review; `None` when empty.
fn lines(rows: &[StoredReview]) -> Option<(Bytes, i64)> {
    let last = rows.last()?.seq;
    let mut out = Vec::with_capacity(rows.len() * 512);
    for row in rows {
        // A record of plain strings and numbers always serialises.
        if serde_json::to_writer(&mut out, &row.record).is_ok() {
            out.push(b'\n');
        }
    }
    Some((Bytes::from(out), last))
}

/// The query parameters, refusing any not in `allowed` (a typo would otherwise be ignored).
fn query_params(
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    allowed: &[&str],
) -> Result<HashMap<String, String>, ServerError> {
    let Query(params) = query.map_err(|e| ServerError::BadRequest(e.body_text()))?;
    if let Some(unknown) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        let name: String = unknown.chars().take(100).collect();
        return Err(ServerError::invalid(
            name.clone(),
            format!("{name}: unknown parameter (known: {})", allowed.join(", ")),
        ));
    }
    Ok(params)
}

/// The `limit` parameter, a whole number from 1 (to `max`, when given).
fn limit(
    params: &HashMap<String, String>,
    max: Option<usize>,
) -> Result<Option<usize>, ServerError> {
    let Some(text) = params.get("limit") else {
        return Ok(None);
    };
    let upper = max.map_or_else(|| "up".to_string(), |m| m.to_string());
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 && max.is_none_or(|m| n <= m) => Ok(Some(n)),
        _ => {
            let shown: String = text.chars().take(40).collect();
            Err(ServerError::invalid(
                "limit",
                format!("limit: must be a whole number from 1 to {upper} (got `{shown}`)"),
            ))
        }
    }
}
