//! The brand registry API under `/v1/brands`: who may do what (the admin token everything,
//! a brand token its own brand), and the store calls, off the async runtime.

use super::admin::bearer;
use super::error::{parse_json, ErrorBody, ServerError};
use super::state::AppState;
use crate::registry::{validate, validate::folded, BrandEntry, RegisteredBrand};
use crate::store::brands::{Actor, HistoryEntry};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

/// A stored brand, with its token when the request created it (shown this once only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BrandAnswer {
    #[serde(flatten)]
    pub brand: RegisteredBrand,
    /// The brand's own bearer token: only in the answer that created the brand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `GET /v1/brands`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BrandList {
    pub brands: Vec<RegisteredBrand>,
}

/// `GET /v1/brands/{name}/history`: every change, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BrandHistory {
    pub changes: Vec<HistoryEntry>,
}

/// Who a request authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    Admin,
    /// A brand token: the brand's display name.
    Brand(String),
}

impl Principal {
    fn actor(&self) -> Actor {
        match self {
            Principal::Admin => Actor::Admin,
            Principal::Brand(name) => Actor::Brand(name.clone()),
        }
    }

    /// The admin, or the token of the brand `name` names.
    fn may_act_on(&self, name: &str) -> Result<(), ServerError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Brand(own) if folded(own) == folded(name) => Ok(()),
            Principal::Brand(_) => Err(ServerError::Forbidden(
                "a brand token may only read and change its own brand".into(),
            )),
        }
    }

    fn must_be_admin(&self) -> Result<(), ServerError> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Brand(_) => Err(ServerError::Forbidden(
                "only the admin token may do this".into(),
            )),
        }
    }
}

/// The bearer token's owner. `writes`: the route changes the registry, which needs a
/// configured admin token (403 without one, as the admin routes).
async fn principal(
    state: &AppState,
    headers: &HeaderMap,
    writes: bool,
) -> Result<Principal, ServerError> {
    let admin = state.config().admin_token.as_ref();
    if writes && admin.is_none() {
        return Err(ServerError::AdminDisabled);
    }
    let presented = bearer(headers).ok_or(ServerError::Unauthorized)?;
    if admin.is_some_and(|token| token.matches(presented)) {
        return Ok(Principal::Admin);
    }
    let token = presented.to_string();
    state
        .store()
        .blocking(move |store| store.brand_of_token(&token))
        .await?
        .map(Principal::Brand)
        .ok_or(ServerError::Unauthorized)
}

/// The brand the path names, once the request may act on it: the admin, or the brand's
/// own token (`writes` as for [`principal`]).
async fn brand_in_path(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    writes: bool,
) -> Result<(String, Principal), ServerError> {
    let name = path?.0;
    let principal = principal(state, headers, writes).await?;
    principal.may_act_on(&name)?;
    Ok((name, principal))
}

fn not_registered(name: &str) -> ServerError {
    let name: String = name.chars().take(100).collect();
    ServerError::NotFound(format!("no brand `{name}` is registered"))
}

/// Registers a brand, or replaces its entry (aliases and products) whole.
#[utoipa::path(
    put,
    path = "/v1/brands/{name}",
    tag = "brand registry",
    params(("name" = String, Path, description = "The brand's name (compared folded: case, accents, width, spacing)")),
    request_body(content = BrandEntry, description = "Aliases and products with list prices"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the answer carries the brand's token, shown only now", body = BrandAnswer),
        (status = 200, description = "Replaced", body = BrandAnswer),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "Another brand's token, or no admin token configured", body = ErrorBody),
        (status = 422, description = "Refused entry, naming the field; nothing is written", body = ErrorBody),
    )
)]
pub async fn put_brand(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<BrandAnswer>), ServerError> {
    let (name, principal) = brand_in_path(&state, path, &headers, true).await?;
    let body = state.body(body)?;
    let entry: BrandEntry = parse_json(&body)?;
    let model = state.core().current_model();
    let rates = model.model.rates();
    let valid = validate(&name, &entry, &|code| rates.rate(code).is_some())?;
    let actor = principal.actor();
    let put = state
        .store()
        .blocking(move |store| store.put_brand(&valid, &actor))
        .await?;
    let status = if put.created() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    tracing::info!(brand = %put.brand.name, created = put.created(), who = %principal.actor(), "brand registered");
    Ok((
        status,
        Json(BrandAnswer {
            brand: put.brand,
            token: put.token,
        }),
    ))
}

/// Every registered brand (admin only).
#[utoipa::path(
    get,
    path = "/v1/brands",
    tag = "brand registry",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The registry, by folded name", body = BrandList),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A brand token, or no admin token configured", body = ErrorBody),
    )
)]
pub async fn list_brands(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<BrandList>, ServerError> {
    principal(&state, &headers, true).await?.must_be_admin()?;
    let brands = state.store().blocking(|store| store.brands()).await?;
    Ok(Json(BrandList { brands }))
}

/// One brand's entry (the admin, or the brand's own token).
#[utoipa::path(
    get,
    path = "/v1/brands/{name}",
    tag = "brand registry",
    params(("name" = String, Path, description = "The brand's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The stored entry", body = BrandAnswer),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "Another brand's token", body = ErrorBody),
        (status = 404, description = "Not registered", body = ErrorBody),
    )
)]
pub async fn get_brand(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<BrandAnswer>, ServerError> {
    let (name, _) = brand_in_path(&state, path, &headers, false).await?;
    let lookup = name.clone();
    let brand = state
        .store()
        .blocking(move |store| store.brand(&lookup))
        .await?
        .ok_or_else(|| not_registered(&name))?;
    Ok(Json(BrandAnswer { brand, token: None }))
}

/// Removes a brand and its token (admin only); its history stays.
#[utoipa::path(
    delete,
    path = "/v1/brands/{name}",
    tag = "brand registry",
    params(("name" = String, Path, description = "The brand's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Deleted; the entry as it was", body = BrandAnswer),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "A brand token, or no admin token configured", body = ErrorBody),
        (status = 404, description = "Not registered", body = ErrorBody),
    )
)]
pub async fn delete_brand(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<BrandAnswer>, ServerError> {
    let name = path?.0;
    principal(&state, &headers, true).await?.must_be_admin()?;
    let lookup = name.clone();
    let brand = state
        .store()
        .blocking(move |store| store.delete_brand(&lookup, &Actor::Admin))
        .await?
        .ok_or_else(|| not_registered(&name))?;
    tracing::info!(brand = %brand.name, "brand deleted");
    Ok(Json(BrandAnswer { brand, token: None }))
}

/// Every change of a brand: who, when, what (the admin, or the brand's own token).
#[utoipa::path(
    get,
    path = "/v1/brands/{name}/history",
    tag = "brand registry",
    params(("name" = String, Path, description = "The brand's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changes, oldest first", body = BrandHistory),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "Another brand's token", body = ErrorBody),
        (status = 404, description = "Never registered", body = ErrorBody),
    )
)]
pub async fn brand_history(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<BrandHistory>, ServerError> {
    let (name, _) = brand_in_path(&state, path, &headers, false).await?;
    let lookup = name.clone();
    let changes = state
        .store()
        .blocking(move |store| store.brand_history(&lookup))
        .await?;
    if changes.is_empty() {
        return Err(not_registered(&name));
    }
    Ok(Json(BrandHistory { changes }))
}
