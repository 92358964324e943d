//! Open Inference Protocol input tensors → one raw listing per batch row: names, shapes,
//! datatypes and elements checked, each error naming the input and row (`price[2]`).

use super::{InferInput, PRICE_INPUT, TEXT_INPUTS};
use crate::data::listing::{RawListing, RawPrice};
use crate::http::error::ServerError;
use serde_json::Value;

/// Where an input goes: one of the text columns (by index in [`TEXT_INPUTS`]) or the price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Text(usize),
    Price,
}

/// The columns read so far, and the batch size the first input set.
#[derive(Default)]
struct Columns<'a> {
    texts: [Option<Vec<String>>; 5],
    prices: Option<Vec<Option<f64>>>,
    /// Rows of the first input read, and its name.
    rows: Option<(usize, &'a str)>,
}

/// Turns input tensors into one raw listing per row.
pub(super) fn decode_inputs(
    inputs: &[InferInput],
    max: usize,
) -> Result<Vec<RawListing>, ServerError> {
    let mut columns = Columns::default();
    for (i, input) in inputs.iter().enumerate() {
        columns.add(i, input)?;
    }
    columns.into_listings(max)
}

impl<'a> Columns<'a> {
    /// Checks input `i` (name, data, shape, batch size, datatype) and stores its column.
    fn add(&mut self, i: usize, input: &'a InferInput) -> Result<(), ServerError> {
        let name = input.name.as_str();
        let slot = self.slot(i, name)?;
        if !input.data.is_array() {
            return Err(ServerError::invalid(
                format!("{name}.data"),
                format!("{name}.data: must be an array"),
            ));
        }
        let mut elements = Vec::new();
        flatten(&input.data, &mut elements);
        let n = batch_size(input, elements.len())?;
        match self.rows {
            Some((expected, first)) if expected != n => {
                return Err(ServerError::invalid(
                    format!("{name}.shape"),
                    format!("all inputs need the same batch size: `{first}` has {expected} rows, `{name}` has {n}"),
                ));
            }
            Some(_) => {}
            None => self.rows = Some((n, name)),
        }
        match slot {
            Slot::Text(k) => self.texts[k] = Some(text_column(input, &elements)?),
            Slot::Price => self.prices = Some(price_column(input, &elements)?),
        }
        Ok(())
    }

    /// Where input `i` called `name` goes; unknown and repeated inputs are refused.
    fn slot(&self, i: usize, name: &str) -> Result<Slot, ServerError> {
        let slot = match TEXT_INPUTS.iter().position(|t| *t == name) {
            Some(k) => Slot::Text(k),
            None if name == PRICE_INPUT => Slot::Price,
            None => {
                return Err(ServerError::invalid(
                    format!("inputs[{i}].name"),
                    format!("unknown input `{name}`; inputs are title, description, brand, category, currency and price"),
                ))
            }
        };
        let already = match slot {
            Slot::Text(k) => self.texts[k].is_some(),
            Slot::Price => self.prices.is_some(),
        };
        if already {
            return Err(ServerError::invalid(
                format!("inputs[{i}].name"),
                format!("input `{name}` is given twice"),
            ));
        }
        Ok(slot)
    }

    /// One raw listing per row; `title` is required and sets the batch size.
    fn into_listings(self, max: usize) -> Result<Vec<RawListing>, ServerError> {
        let [title, description, brand, category, currency] = self.texts;
        let Some(title) = title else {
            return Err(ServerError::invalid("title", "title: input is required"));
        };
        let n = title.len();
        if n == 0 {
            return Err(ServerError::invalid(
                "title",
                "title: the batch must hold at least one listing",
            ));
        }
        if n > max {
            return Err(ServerError::invalid(
                "title",
                format!("the batch has {n} listings; the limit is {max}"),
            ));
        }
        let column = |c: Option<Vec<String>>| -> Vec<Option<String>> {
            match c {
                Some(values) => values.into_iter().map(Some).collect(),
                None => vec![None; n],
            }
        };
        let prices = self.prices.unwrap_or_else(|| vec![None; n]);
        Ok(title
            .into_iter()
            .zip(column(description))
            .zip(column(brand))
            .zip(column(category))
            .zip(column(currency))
            .zip(prices)
            .map(
                |(((((title, description), brand), category), currency), price)| RawListing {
                    id: None,
                    title: Some(title),
                    description,
                    price: price.map(RawPrice::Number),
                    currency,
                    brand,
                    category,
                },
            )
            .collect())
    }
}

/// A text input's elements: BYTES, each a JSON string.
fn text_column(input: &InferInput, elements: &[&Value]) -> Result<Vec<String>, ServerError> {
    let name = input.name.as_str();
    if !input.datatype.eq_ignore_ascii_case("BYTES") {
        return Err(ServerError::invalid(
            format!("{name}.datatype"),
            format!("{name}.datatype: must be BYTES (got {})", input.datatype),
        ));
    }
    elements
        .iter()
        .enumerate()
        .map(|(row, v)| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(ServerError::invalid(
                format!("{name}[{row}]"),
                format!("{name}[{row}]: must be a string (got {other})"),
            )),
        })
        .collect()
}

/// The price input's elements: numbers of a numeric datatype, `null` for "no price".
fn price_column(input: &InferInput, elements: &[&Value]) -> Result<Vec<Option<f64>>, ServerError> {
    let name = input.name.as_str();
    let datatype = input.datatype.to_ascii_uppercase();
    if !matches!(
        datatype.as_str(),
        "FP64" | "FP32" | "FP16" | "INT64" | "INT32"
    ) {
        return Err(ServerError::invalid(
            format!("{name}.datatype"),
            format!(
                "{name}.datatype: must be FP64 or FP32 (got {})",
                input.datatype
            ),
        ));
    }
    elements
        .iter()
        .enumerate()
        .map(|(row, v)| match v {
            Value::Number(n) => Ok(n.as_f64()),
            // Lenient: JSON cannot carry NaN, so null stands for "no price".
            Value::Null => Ok(None),
            other => Err(ServerError::invalid(
                format!("{name}[{row}]"),
                format!("{name}[{row}]: must be a number (got {other})"),
            )),
        })
        .collect()
}

/// Appends the scalars of a possibly nested JSON array, row-major.
fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        scalar => out.push(scalar),
    }
}

/// Checks an input's shape against its data and returns the batch size: the shape must be
/// `[n]` or `[n, 1, ...]` (one element per listing) and match the element count.
fn batch_size(input: &InferInput, elements: usize) -> Result<usize, ServerError> {
    let field = format!("{}.shape", input.name);
    let Some(&first) = input.shape.first() else {
        return Err(ServerError::invalid(
            &field,
            format!("{field}: must not be empty"),
        ));
    };
    if input.shape.iter().any(|&d| d < 0) {
        return Err(ServerError::invalid(
            &field,
            format!("{field}: dimensions must not be negative"),
        ));
    }
    let per_row: i64 = input.shape[1..]
        .iter()
        .try_fold(1i64, |acc, &d| acc.checked_mul(d))
        .unwrap_or(i64::MAX);
    if per_row != 1 {
        return Err(ServerError::invalid(
            &field,
            format!("{field}: each listing takes one element, so the shape must be [n] or [n, 1] (got {:?})", input.shape),
        ));
    }
    let n = usize::try_from(first).unwrap_or(usize::MAX);
    if n != elements {
        return Err(ServerError::invalid(
            &field,
            format!(
                "{field}: {:?} needs {n} elements but data has {elements}",
                input.shape
            ),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, datatype: &str, shape: Vec<i64>, data: Value) -> InferInput {
        InferInput {
            name: name.into(),
            shape,
            datatype: datatype.into(),
            parameters: None,
            data,
        }
    }

    #[test]
    fn nested_and_flat_data_decode_alike() {
        let flat = decode_inputs(
            &[
                input("title", "BYTES", vec![2], serde_json::json!(["a", "b"])),
                input(
                    "price",
                    "FP32",
                    vec![2, 1],
                    serde_json::json!([[1.5], [2.0]]),
                ),
            ],
            10,
        )
        .unwrap();
        assert_eq!(flat.len(), 2);
        assert_eq!(flat[1].price, Some(RawPrice::Number(2.0)));
        assert_eq!(flat[0].title.as_deref(), Some("a"));
        assert_eq!(flat[0].brand, None);
    }

    #[test]
    fn bad_tensors_name_the_input() {
        let field = |inputs: &[InferInput]| {
            decode_inputs(inputs, 10)
                .unwrap_err()
                .field()
                .map(str::to_owned)
        };
        assert_eq!(field(&[]), Some("title".into()));
        assert_eq!(
            field(&[input(
                "title",
                "BYTES",
                vec![3],
                serde_json::json!(["a", "b"])
            )]),
            Some("title.shape".into())
        );
        assert_eq!(
            field(&[input("title", "FP32", vec![1], serde_json::json!([1.0]))]),
            Some("title.datatype".into())
        );
        assert_eq!(
            field(&[
                input("title", "BYTES", vec![1], serde_json::json!(["a"])),
                input("brand", "BYTES", vec![2], serde_json::json!(["a", "b"])),
            ]),
            Some("brand.shape".into())
        );
        assert_eq!(
            field(&[input("colour", "BYTES", vec![1], serde_json::json!(["a"]))]),
            Some("inputs[0].name".into())
        );
        assert_eq!(
            field(&[input(
                "title",
                "BYTES",
                vec![2],
                serde_json::json!(["a", 3])
            )]),
            Some("title[1]".into())
        );
        assert_eq!(
            field(&[input(
                "title",
                "BYTES",
                vec![1, 2],
                serde_json::json!([["a", "b"]])
            )]),
            Some("title.shape".into())
        );
        assert_eq!(
            field(&[input("title", "BYTES", vec![-1], serde_json::json!(["a"]))]),
            Some("title.shape".into())
        );
    }
}
