//! knockoff's own scoring route, `POST /v1/score`: one listing or `{"listings": [...]}`
//! in, probability, decision and reasons out.
//!
//! Batch contract of `/v1/score`: a batch is all or nothing. If any listing is invalid the
//! whole request is refused with 422 and `field` names the first bad one, e.g.
//! `listings[3].price`; nothing is scored. Pipelines then fix or drop that listing and
//! resend, instead of having to match partial results back to their inputs.

use super::error::{json_error, value_at, ErrorBody, ServerError};
use super::state::AppState;
use crate::brand::BrandMatch;
use crate::data::listing::RawListing;
use crate::decision::Decision;
use crate::model::Reason;
use crate::serve::{ModelInfo, ScoringCore};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"listings": [...]}`: several listings scored in one request.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchRequest {
    /// One to `--max-batch-listings` (default 1000) listings, answered in the same order.
    pub listings: Vec<RawListing>,
}

/// A `/v1/score` body: one listing object, or a batch.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ScoreRequest {
    Batch(BatchRequest),
    One(RawListing),
}

/// The three decisions, for the API schema.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = Decision)]
pub enum DecisionSchema {
    Allow,
    Review,
    Block,
}

/// One listing's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreResult {
    /// The listing's `id` as sent (numbers as strings; empty when none was sent).
    pub id: String,
    /// Calibrated probability that the listing is counterfeit, 0..1.
    pub probability: f32,
    /// `block` at or above the block threshold, `review` at or above the review
    /// threshold, else `allow`.
    #[schema(value_type = DecisionSchema)]
    pub decision: Decision,
    /// The features that pushed the score most, strongest first (`--reasons` of them).
    pub reasons: Vec<Reason>,
    /// The known brand the listing claims (`relation: "is"`), is an accessory for (`"for"`)
    /// or only shares a name with (`"namesake"`: a category the brand never sells in), where
    /// it was found and how; `null` when it names none. Only a listing that claims a known
    /// brand can be blocked.
    pub brand: Option<BrandMatch>,
}

/// The answer of `/v1/score`, for a single listing or a batch alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreResponse {
    /// The model that scored these listings.
    pub model: ModelInfo,
    /// One result per listing, in request order.
    pub results: Vec<ScoreResult>,
}

/// Splits a `/v1/score` body into raw listings, and tells whether it was a batch.
fn parse_score_body(body: &[u8], max: usize) -> Result<(Vec<RawListing>, bool), ServerError> {
    match read_well_formed(body, max) {
        Some(parsed) => Ok(parsed),
        None => read_naming_errors(body, max),
    }
}

/// The common case, a well-formed body, read straight into listings without building a
/// JSON tree first. `None` means something is off: [`read_naming_errors`] then finds and
/// names it (or accepts the body after all), so both readers give the same answers.
fn read_well_formed(body: &[u8], max: usize) -> Option<(Vec<RawListing>, bool)> {
    /// Only the top-level `listings` key matters here; every other key is skipped unread.
    #[derive(Deserialize)]
    struct Shape {
        #[serde(default, deserialize_with = "present")]
        listings: Option<Vec<ObjectListing>>,
    }
    /// A listing that must be a JSON object (serde would also take a positional array).
    struct ObjectListing(RawListing);
    impl<'de> Deserialize<'de> for ObjectListing {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = ObjectListing;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a listing object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    map: A,
                ) -> Result<Self::Value, A::Error> {
                    RawListing::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                        .map(ObjectListing)
                }
            }
            d.deserialize_map(Visit)
        }
    }
    /// A present key is `Some` even when its value is `null`, which is then refused.
    fn present<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<ObjectListing>>, D::Error> {
        Vec::deserialize(d).map(Some)
    }

    // serde reads a struct from an array too; only an object is a listing or a batch.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    let shape: Shape = serde_json::from_slice(body).ok()?;
    match shape.listings {
        None => {
            let listing: ObjectListing = serde_json::from_slice(body).ok()?;
            Some((vec![listing.0], false))
        }
        Some(items) if !items.is_empty() && items.len() <= max => {
            Some((items.into_iter().map(|l| l.0).collect(), true))
        }
        Some(_) => None,
    }
}

/// Reads a `/v1/score` body through a JSON tree: the shape (one listing or a batch) decides
/// how to read it, and each listing is then read on its own, so errors name its index.
fn read_naming_errors(body: &[u8], max: usize) -> Result<(Vec<RawListing>, bool), ServerError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| json_error(e, "."))?;
    let Value::Object(mut object) = value else {
        return Err(ServerError::invalid_request(
            "expected a listing object or {\"listings\": [...]}",
        ));
    };
    let Some(listings) = object.remove("listings") else {
        return Ok((vec![raw_listing(Value::Object(object), "")?], false));
    };
    let Value::Array(items) = listings else {
        return Err(ServerError::invalid(
            "listings",
            "listings: must be an array of listing objects",
        ));
    };
    if items.is_empty() {
        return Err(ServerError::invalid(
            "listings",
            "listings: must contain at least one listing",
        ));
    }
    if items.len() > max {
        return Err(ServerError::invalid(
            "listings",
            format!("listings: has {} listings; the limit is {max}", items.len()),
        ));
    }
    let raws = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| raw_listing(item, &format!("listings[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((raws, true))
}

/// Reads one listing; type errors name the field under `prefix`.
fn raw_listing(value: Value, prefix: &str) -> Result<RawListing, ServerError> {
    if !value.is_object() {
        let field = if prefix.is_empty() { "." } else { prefix };
        return Err(ServerError::invalid(
            field,
            format!("{field}: must be a listing object"),
        ));
    }
    value_at(value, prefix)
}

/// Score one listing or a batch.
#[utoipa::path(
    post,
    path = "/v1/score",
    tag = "scoring",
    request_body(content = ScoreRequest, description = "One listing, or {\"listings\": [...]}"),
    responses(
        (status = 200, description = "Scores in request order", body = ScoreResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body larger than --max-body-bytes", body = ErrorBody),
        (status = 422, description = "A listing is invalid (field names it, e.g. listings[3].price), or the batch is empty or too large", body = ErrorBody),
        (status = 429, description = "Scoring queue full; see Retry-After", body = ErrorBody),
        (status = 500, description = "Model failure", body = ErrorBody),
        (status = 503, description = "Scoring unavailable", body = ErrorBody),
    )
)]
pub async fn score(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ScoreResponse>, ServerError> {
    let body = state.body(body)?;
    let (raws, batch) = parse_score_body(&body, state.config().max_batch_listings)?;
    let core = state.core();
    let model = core.current_model();
    let listings = ScoringCore::validate(&model, raws, |i, field| {
        if batch {
            format!("listings[{i}].{field}")
        } else {
            field.to_string()
        }
    })?;
    let (listings, scored) = core
        .score_keeping(model.clone(), listings, state.config().reasons)
        .await?;
    state.review_recorder().record(&model, listings, &scored);
    Ok(Json(ScoreResponse {
        model: ModelInfo {
            name: model.name().to_string(),
            version: model.version().to_string(),
        },
        results: scored
            .into_iter()
            .map(|s| ScoreResult {
                id: s.id,
                probability: s.probability,
                decision: s.decision,
                reasons: s.reasons,
                brand: s.brand,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_score_bodies() {
        let (raws, batch) = parse_score_body(br#"{"title": "a"}"#, 10).unwrap();
        assert_eq!((raws.len(), batch), (1, false));
        let (raws, batch) =
            parse_score_body(br#"{"listings": [{"title": "a"}, {"title": "b"}]}"#, 10).unwrap();
        assert_eq!((raws.len(), batch), (2, true));
        let e =
            parse_score_body(br#"{"listings": [{"title": "a"}, {"title": 5}]}"#, 10).unwrap_err();
        assert_eq!(e.field(), Some("listings[1].title"));
        let e = parse_score_body(br#"{"listings": [{"title": "a"}, 7]}"#, 10).unwrap_err();
        assert_eq!(e.field(), Some("listings[1]"));
        let e = parse_score_body(br#"{"price": true}"#, 10).unwrap_err();
        assert_eq!(e.field(), Some("price"));
        let e = parse_score_body(br#"{"listings": [{}, {}, {}]}"#, 2).unwrap_err();
        assert_eq!(e.field(), Some("listings"));
        let e = parse_score_body(br#"[1]"#, 2).unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        let e = parse_score_body(br#"{"title": "#, 2).unwrap_err();
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_fast_reader_agrees_with_the_careful_one() {
        let accepted: [&[u8]; 6] = [
            br#"{"title": "a", "price": "12.5", "id": 7, "extra": [1, {"x": null}]}"#,
            br#"  {"listings": [{"title": "a"}, {"title": "b", "price": 3}], "note": "x"}"#,
            br#"{"title": "a", "brand": null, "price": null}"#,
            br#"{"listings": [{"title": "a", "unknown": {"deep": [1, 2]}}]}"#,
            br#"{"title": "\u00e9t\u00e9 \"quoted\""}"#,
            br#"{"listings": [{}]}"#,
        ];
        for body in accepted {
            let fast = read_well_formed(body, 10);
            let careful = read_naming_errors(body, 10).ok();
            assert!(fast.is_some(), "{}", String::from_utf8_lossy(body));
            assert_eq!(fast, careful, "{}", String::from_utf8_lossy(body));
        }
        // Whatever the careful reader refuses, the fast one must not accept.
        let refused: [&[u8]; 10] = [
            br#"[{"title": "a"}]"#,
            br#"["id", "title"]"#,
            br#"{"listings": null, "title": "a"}"#,
            br#"{"listings": [["id", "title"]]}"#,
            br#"{"listings": [{"title": "a"}, 7]}"#,
            br#"{"listings": []}"#,
            br#"{"listings": [{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}]}"#,
            br#"{"listings": {"title": "a"}}"#,
            br#"{"price": true}"#,
            br#"{"title": "a""#,
        ];
        for body in refused {
            assert!(
                read_naming_errors(body, 10).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(
                read_well_formed(body, 10),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
