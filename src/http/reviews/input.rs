//! A `POST /v1/reviews` body checked: one review or a batch, each field validated and named
//! (`reviews[3].listing.price`) when it is not.

use super::*;

/// A review whose fields passed their checks.
pub(super) struct Pending {
    /// `reviews[3]` in a batch, empty for a single review.
    pub prefix: String,
    pub id: String,
    pub label: ReviewLabel,
    pub reviewer: String,
    pub note: Option<String>,
    pub listing: Option<Listing>,
}

/// `prefix.name`, or `name` at the top level.
pub(super) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Splits a body into reviews, each with the prefix its errors are named under.
pub(super) fn parse_reviews(
    body: &[u8],
    max: usize,
) -> Result<Vec<(String, ReviewInput)>, ServerError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| json_error(e, "."))?;
    let Value::Object(mut object) = value else {
        return Err(ServerError::invalid_request(
            "expected a review object or {\"reviews\": [...]}",
        ));
    };
    let Some(reviews) = object.remove("reviews") else {
        return Ok(vec![(String::new(), value_at(Value::Object(object), "")?)]);
    };
    if let Some(other) = object.keys().next() {
        return Err(ServerError::invalid(
            other.clone(),
            format!("{other}: unknown field beside `reviews`"),
        ));
    }
    let Value::Array(items) = reviews else {
        return Err(ServerError::invalid(
            "reviews",
            "reviews: must be an array of review objects",
        ));
    };
    if items.is_empty() || items.len() > max {
        return Err(ServerError::invalid(
            "reviews",
            format!(
                "reviews: has {} reviews; from 1 to {max} are accepted",
                items.len()
            ),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let prefix = format!("reviews[{i}]");
            if !item.is_object() {
                return Err(ServerError::invalid(
                    prefix.clone(),
                    format!("{prefix}: must be a review object"),
                ));
            }
            value_at(item, &prefix).map(|input| (prefix, input))
        })
        .collect()
}

/// Checks one review's fields; a listing is validated as `/v1/score` validates listings.
pub(super) fn check(
    model: &crate::serve::queue::LoadedModel,
    prefix: String,
    input: ReviewInput,
) -> Result<Pending, ServerError> {
    let bad = |name: &str, message: String| {
        let field = join(&prefix, name);
        ServerError::invalid(field.clone(), format!("{field}: {message}"))
    };
    let id = input.id.into_string();
    let id_chars = id.chars().count();
    if id.is_empty() || id_chars > MAX_ID_CHARS {
        return Err(bad(
            "id",
            format!("must be 1 to {MAX_ID_CHARS} characters (got {id_chars})"),
        ));
    }
    let reviewer = input.reviewer.trim().to_string();
    let reviewer_chars = reviewer.chars().count();
    if reviewer.is_empty() || reviewer_chars > MAX_REVIEWER_CHARS {
        return Err(bad(
            "reviewer",
            format!("must be 1 to {MAX_REVIEWER_CHARS} characters (got {reviewer_chars})"),
        ));
    }
    let note = input
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if let Some(chars) = note.as_ref().map(|n| n.chars().count()) {
        if chars > MAX_NOTE_CHARS {
            return Err(bad(
                "note",
                format!("is {chars} characters long; the limit is {MAX_NOTE_CHARS}"),
            ));
        }
    }
    let listing = match input.listing {
        None => None,
        Some(mut raw) => {
            match raw.id.take().map(RawId::into_string) {
                Some(given) if given != id => {
                    return Err(bad(
                        "listing.id",
                        format!("must be the review's id `{id}` or left out"),
                    ))
                }
                _ => raw.id = Some(RawId::Text(id.clone())),
            }
            let listing_prefix = join(&prefix, "listing");
            ScoringCore::validate(model, vec![raw], |_, field| join(&listing_prefix, field))?.pop()
        }
    };
    Ok(Pending {
        prefix,
        id,
        label: input.label,
        reviewer,
        note,
        listing,
    })
}
