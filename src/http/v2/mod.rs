//! The Open Inference Protocol (KServe v2 / Triton) REST routes, JSON encoding only, so
//! the clients operations teams already run (e.g. `tritonclient[http]` with
//! `binary_data=False`) can score listings.
//!
//! The model takes one listing per batch row: inputs `title` (required), `description`,
//! `brand`, `category`, `currency` (BYTES) and `price` (FP64, FP32 accepted), each of shape
//! `[n]` or `[n, 1]` with the same `n`; data may be flat or nested. Outputs are
//! `probability` (FP32) and `decision` (BYTES), shape `[n]`. Rows are validated exactly
//! like `/v1/score` listings; errors name the input and row, e.g. `price[2]`.

mod decode;

use super::error::{parse_json, ErrorBody, ServerError};
use super::state::AppState;
use crate::serve::queue::LoadedModel;
use crate::serve::ScoringCore;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// Inputs carried as strings, in metadata order.
const TEXT_INPUTS: [&str; 5] = ["title", "description", "brand", "category", "currency"];
const PRICE_INPUT: &str = "price";
const PROBABILITY_OUTPUT: &str = "probability";
const DECISION_OUTPUT: &str = "decision";

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LiveResponse {
    pub live: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReadyResponse {
    pub ready: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelReadyResponse {
    pub name: String,
    pub ready: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServerMetadata {
    pub name: String,
    pub version: String,
    pub extensions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: String,
    /// `-1` is a variable dimension (the batch).
    pub shape: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelMetadata {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: String,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

/// One input tensor in JSON form.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InferInput {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Row-major elements, flat or nested.
    pub data: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestedOutput {
    pub name: String,
    /// Accepted and ignored: answers are always JSON (no binary tensor extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InferRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    pub inputs: Vec<InferInput>,
    /// Outputs to return, in this order; all of them when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<RequestedOutput>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum OutputData {
    Fp32(Vec<f32>),
    Bytes(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InferOutput {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<usize>,
    pub data: OutputData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub outputs: Vec<InferOutput>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/v2/health/live", tag = "inference protocol v2",
    responses((status = 200, body = LiveResponse)))]
pub async fn live() -> Json<LiveResponse> {
    Json(LiveResponse { live: true })
}

/// Readiness: a model is loaded, the model thread runs, and no shutdown is under way.
#[utoipa::path(get, path = "/v2/health/ready", tag = "inference protocol v2",
    responses((status = 200, body = ReadyResponse), (status = 503, body = ReadyResponse)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let ready = state.is_ready();
    (ready_status(ready), Json(ReadyResponse { ready })).into_response()
}

fn ready_status(ready: bool) -> StatusCode {
    if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Server metadata.
#[utoipa::path(get, path = "/v2", tag = "inference protocol v2",
    responses((status = 200, body = ServerMetadata)))]
pub async fn server_metadata() -> Json<ServerMetadata> {
    Json(ServerMetadata {
        name: "knockoff-serve".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        extensions: Vec::new(),
    })
}

/// The served model if `name` (and `version`, when given) match it.
fn find_model(
    state: &AppState,
    name: &str,
    version: Option<&str>,
) -> Result<Arc<LoadedModel>, ServerError> {
    let model = state.core().current_model();
    if model.name() != name {
        return Err(ServerError::NotFound(format!(
            "unknown model `{name}`; this server serves `{}`",
            model.name()
        )));
    }
    if let Some(version) = version {
        if model.version() != version {
            return Err(ServerError::NotFound(format!(
                "model `{name}` has no version `{version}`; the served version is `{}`",
                model.version()
            )));
        }
    }
    Ok(model)
}

fn metadata(model: &LoadedModel) -> ModelMetadata {
    let tensor = |name: &str, datatype: &str| TensorMetadata {
        name: name.into(),
        datatype: datatype.into(),
        shape: vec![-1],
    };
    let mut inputs: Vec<TensorMetadata> = TEXT_INPUTS.iter().map(|n| tensor(n, "BYTES")).collect();
    inputs.push(tensor(PRICE_INPUT, "FP64"));
    ModelMetadata {
        name: model.name().into(),
        versions: vec![model.version().into()],
        platform: "knockoff".into(),
        inputs,
        outputs: vec![
            tensor(PROBABILITY_OUTPUT, "FP32"),
            tensor(DECISION_OUTPUT, "BYTES"),
        ],
    }
}

/// Model metadata: inputs and outputs.
#[utoipa::path(get, path = "/v2/models/{name}", tag = "inference protocol v2",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, body = ModelMetadata), (status = 404, body = ErrorBody)))]
pub async fn model_metadata(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<ModelMetadata>, ServerError> {
    let Path(name) = name?;
    let model = find_model(&state, &name, None)?;
    Ok(Json(metadata(&model)))
}

/// Model metadata for one version (only the served version exists).
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}", tag = "inference protocol v2",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = ModelMetadata), (status = 404, body = ErrorBody)))]
pub async fn model_version_metadata(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<ModelMetadata>, ServerError> {
    let Path((name, version)) = path?;
    let model = find_model(&state, &name, Some(&version))?;
    Ok(Json(metadata(&model)))
}

fn model_ready_response(state: &AppState, model: &LoadedModel) -> Response {
    let ready = state.is_ready();
    (
        ready_status(ready),
        Json(ModelReadyResponse {
            name: model.name().into(),
            ready,
        }),
    )
        .into_response()
}

/// Model readiness.
#[utoipa::path(get, path = "/v2/models/{name}/ready", tag = "inference protocol v2",
    params(("name" = String, Path)),
    responses((status = 200, body = ModelReadyResponse), (status = 503, body = ModelReadyResponse), (status = 404, body = ErrorBody)))]
pub async fn model_ready(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ServerError> {
    let Path(name) = name?;
    let model = find_model(&state, &name, None)?;
    Ok(model_ready_response(&state, &model))
}

/// Model readiness for one version.
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}/ready", tag = "inference protocol v2",
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = ModelReadyResponse), (status = 503, body = ModelReadyResponse), (status = 404, body = ErrorBody)))]
pub async fn model_version_ready(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ServerError> {
    let Path((name, version)) = path?;
    let model = find_model(&state, &name, Some(&version))?;
    Ok(model_ready_response(&state, &model))
}

/// Score a batch given as inference-protocol tensors.
#[utoipa::path(post, path = "/v2/models/{name}/infer", tag = "inference protocol v2",
    params(("name" = String, Path)),
    request_body = InferRequest,
    responses(
        (status = 200, body = InferResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "Unknown model", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "Bad tensors or an invalid row (field names it, e.g. price[2])", body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn infer(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<InferResponse>, ServerError> {
    let Path(name) = name?;
    run_infer(state, name, None, body).await
}

/// Score a batch on one model version.
#[utoipa::path(post, path = "/v2/models/{name}/versions/{version}/infer", tag = "inference protocol v2",
    params(("name" = String, Path), ("version" = String, Path)),
    request_body = InferRequest,
    responses((status = 200, body = InferResponse), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn version_infer(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<InferResponse>, ServerError> {
    let Path((name, version)) = path?;
    run_infer(state, name, Some(version), body).await
}

async fn run_infer(
    state: AppState,
    name: String,
    version: Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<InferResponse>, ServerError> {
    let body = state.body(body)?;
    let model = find_model(&state, &name, version.as_deref())?;
    let request: InferRequest = parse_json(&body)?;
    let outputs = requested_outputs(request.outputs.as_deref())?;
    let raws = decode::decode_inputs(&request.inputs, state.config().max_batch_listings)?;
    let listings = ScoringCore::validate(&model, raws, |row, field| format!("{field}[{row}]"))?;
    let n = listings.len();
    // No reasons: the protocol's outputs have no place for them.
    let (listings, scored) = state
        .core()
        .score_keeping(Arc::clone(&model), listings, 0)
        .await?;
    state.review_recorder().record(&model, listings, &scored);
    let outputs = outputs
        .into_iter()
        .map(|output| match output {
            PROBABILITY_OUTPUT => InferOutput {
                name: PROBABILITY_OUTPUT.into(),
                datatype: "FP32".into(),
                shape: vec![n],
                data: OutputData::Fp32(scored.iter().map(|s| s.probability).collect()),
            },
            _ => InferOutput {
                name: DECISION_OUTPUT.into(),
                datatype: "BYTES".into(),
                shape: vec![n],
                data: OutputData::Bytes(
                    scored
                        .iter()
                        .map(|s| s.decision.as_str().to_string())
                        .collect(),
                ),
            },
        })
        .collect();
    Ok(Json(InferResponse {
        model_name: model.name().into(),
        model_version: model.version().into(),
        id: request.id,
        outputs,
    }))
}

fn requested_outputs(
    requested: Option<&[RequestedOutput]>,
) -> Result<Vec<&'static str>, ServerError> {
    let Some(requested) = requested else {
        return Ok(vec![PROBABILITY_OUTPUT, DECISION_OUTPUT]);
    };
    if requested.is_empty() {
        return Ok(vec![PROBABILITY_OUTPUT, DECISION_OUTPUT]);
    }
    requested
        .iter()
        .enumerate()
        .map(|(i, output)| match output.name.as_str() {
            PROBABILITY_OUTPUT => Ok(PROBABILITY_OUTPUT),
            DECISION_OUTPUT => Ok(DECISION_OUTPUT),
            other => Err(ServerError::invalid(
                format!("outputs[{i}].name"),
                format!("unknown output `{other}`; this model has `probability` and `decision`"),
            )),
        })
        .collect()
}
