//! Arrow record batches in the listing schema → raw rows: the one conversion that Parquet
//! input ([`super::parquet`]) and the Python bindings (pyarrow tables, pandas frames) share,
//! so both read the same cells as the same fields.
//!
//! Columns are found by name as in the CSV reader (trimmed, any case); other columns are
//! ignored. Text columns may be any type Arrow can cast to text (strings of any width,
//! dictionaries, numbers, booleans). An integer `id` stays an integer. A `Float64` price is
//! taken as the number it is; any other price type is read as its text, as a CSV cell would
//! be, so `19.99` stored as `Float32` is 19.99. Casts are strict: a value that does not fit
//! is an error naming the column, never a silent null.

use super::RawRow;
use crate::data::listing::{RawId, RawListing, RawPrice};
use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, LargeStringArray, RecordBatch,
};
use arrow::compute::{can_cast_types, cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Float64Type, Int64Type, Schema};
use arrow::error::ArrowError;

/// A problem with the columns as a whole (the schema, or a column's type), not one row.
#[derive(Debug, thiserror::Error)]
pub enum ColumnsError {
    #[error("missing required column `title` (columns: {columns})")]
    MissingTitle { columns: String },
    #[error("column `{column}`: cannot read {data_type} as {wanted}: {source}")]
    Column {
        column: String,
        data_type: DataType,
        wanted: &'static str,
        source: ArrowError,
    },
}

/// Listing fields read from Arrow, in the CSV schema's names.
pub const LISTING_FIELDS: [&str; 8] = [
    "id",
    "title",
    "description",
    "price",
    "currency",
    "brand",
    "category",
    "label",
];

const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: arrow::util::display::FormatOptions::new(),
};

/// The position of the column called `name` (trimmed, any case), as the CSV reader finds it.
fn column_index(schema: &Schema, name: &str) -> Option<usize> {
    schema
        .fields()
        .iter()
        .position(|f| f.name().trim().eq_ignore_ascii_case(name))
}

/// The `title` column's position; a schema without one is refused, naming its columns.
pub fn title_column(schema: &Schema) -> Result<usize, ColumnsError> {
    column_index(schema, "title").ok_or_else(|| ColumnsError::MissingTitle {
        columns: schema
            .fields()
            .iter()
            .map(|f| format!("`{}`", f.name()))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The positions of the listing columns in `schema`, after checking there is a title and
/// that every listing column can be read; for reading only those columns of a file.
pub fn listing_columns(schema: &Schema) -> Result<Vec<usize>, ColumnsError> {
    title_column(schema)?;
    let mut found = Vec::new();
    for field in LISTING_FIELDS {
        let Some(index) = column_index(schema, field) else {
            continue;
        };
        let column = schema.field(index);
        let data_type = column.data_type();
        let typed = match field {
            "id" => data_type.is_integer(),
            "price" => data_type == &DataType::Float64,
            _ => false,
        };
        if !typed {
            text_type(column.name(), data_type)?;
        }
        found.push(index);
    }
    Ok(found)
}

/// Refuses a column type that is not one value or cannot be cast to text.
fn text_type(column: &str, data_type: &DataType) -> Result<(), ColumnsError> {
    let reason = if data_type.is_nested() {
        // Arrow can print lists and structs as text, but a listing field is one value.
        "nested values are not listing fields"
    } else if !can_cast_types(data_type, &DataType::LargeUtf8) {
        "no cast to text"
    } else {
        return Ok(());
    };
    Err(ColumnsError::Column {
        column: column.to_string(),
        data_type: data_type.clone(),
        wanted: "text",
        source: ArrowError::CastError(reason.into()),
    })
}

fn cast(
    column: &str,
    array: &ArrayRef,
    to: &DataType,
    wanted: &'static str,
) -> Result<ArrayRef, ColumnsError> {
    cast_with_options(array, to, &STRICT).map_err(|source| ColumnsError::Column {
        column: column.to_string(),
        data_type: array.data_type().clone(),
        wanted,
        source,
    })
}

fn as_text(column: &str, array: &ArrayRef) -> Result<LargeStringArray, ColumnsError> {
    text_type(column, array.data_type())?;
    Ok(cast(column, array, &DataType::LargeUtf8, "text")?
        .as_string::<i64>()
        .clone())
}

fn text_cell(array: &LargeStringArray, row: usize) -> Option<String> {
    array.is_valid(row).then(|| array.value(row).to_string())
}

enum IdColumn {
    Integer(Int64Array),
    Text(LargeStringArray),
}

enum PriceColumn {
    Number(Float64Array),
    Text(LargeStringArray),
}

/// The listing columns of one record batch, each cast once to the type rows are read from.
pub struct ListingColumns {
    id: Option<IdColumn>,
    title: LargeStringArray,
    description: Option<LargeStringArray>,
    price: Option<PriceColumn>,
    currency: Option<LargeStringArray>,
    brand: Option<LargeStringArray>,
    category: Option<LargeStringArray>,
    label: Option<LargeStringArray>,
}

impl ListingColumns {
    /// Finds and casts the listing columns of `batch`; refuses a batch without a title or
    /// with a column that cannot be read, naming it.
    pub fn find(batch: &RecordBatch) -> Result<ListingColumns, ColumnsError> {
        let schema = batch.schema();
        let title = title_column(&schema)?;
        let find = |name: &str| {
            column_index(&schema, name).map(|i| (schema.field(i).name().as_str(), batch.column(i)))
        };
        let text = |name: &str| {
            find(name)
                .map(|(column, array)| as_text(column, array))
                .transpose()
        };
        let id = match find("id") {
            None => None,
            Some((column, array)) if array.data_type().is_integer() => Some(IdColumn::Integer(
                cast(column, array, &DataType::Int64, "a 64-bit integer")?
                    .as_primitive::<Int64Type>()
                    .clone(),
            )),
            Some((column, array)) => Some(IdColumn::Text(as_text(column, array)?)),
        };
        let price = match find("price") {
            None => None,
            Some((_, array)) if array.data_type() == &DataType::Float64 => Some(
                PriceColumn::Number(array.as_primitive::<Float64Type>().clone()),
            ),
            Some((column, array)) => Some(PriceColumn::Text(as_text(column, array)?)),
        };
        Ok(ListingColumns {
            id,
            title: as_text(schema.field(title).name(), batch.column(title))?,
            description: text("description")?,
            price,
            currency: text("currency")?,
            brand: text("brand")?,
            category: text("category")?,
            label: text("label")?,
        })
    }

    /// Row `row` as read, numbered `line`.
    pub fn row(&self, row: usize, line: u64) -> RawRow {
        let text = |column: &Option<LargeStringArray>| {
            column.as_ref().and_then(|array| text_cell(array, row))
        };
        let id = self.id.as_ref().and_then(|column| match column {
            IdColumn::Integer(array) => array
                .is_valid(row)
                .then(|| RawId::Integer(array.value(row))),
            IdColumn::Text(array) => text_cell(array, row).map(RawId::Text),
        });
        let price = self.price.as_ref().and_then(|column| match column {
            PriceColumn::Number(array) => array
                .is_valid(row)
                .then(|| RawPrice::Number(array.value(row))),
            PriceColumn::Text(array) => text_cell(array, row).map(RawPrice::Text),
        });
        RawRow {
            line,
            listing: RawListing {
                id,
                title: text_cell(&self.title, row),
                description: text(&self.description),
                price,
                currency: text(&self.currency),
                brand: text(&self.brand),
                category: text(&self.category),
            },
            label: text(&self.label),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float32Array, Int32Array, ListArray, StringArray};
    use std::sync::Arc;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn columns_are_found_by_name_in_any_case_and_order() {
        let b = batch(vec![
            ("extra", Arc::new(StringArray::from(vec!["x"])) as ArrayRef),
            (" Title ", Arc::new(StringArray::from(vec!["Rolex watch"]))),
            ("ID", Arc::new(Int32Array::from(vec![17]))),
            ("price", Arc::new(Float32Array::from(vec![19.99f32]))),
            ("currency", Arc::new(StringArray::from(vec![Some("usd")]))),
        ]);
        assert_eq!(listing_columns(&b.schema()).unwrap(), [2, 1, 3, 4]);
        let row = ListingColumns::find(&b).unwrap().row(0, 1);
        assert_eq!(row.listing.title.as_deref(), Some("Rolex watch"));
        assert_eq!(row.listing.id, Some(RawId::Integer(17)));
        // A Float32 price is read as its text, as a CSV cell, not as 19.9899997...
        assert_eq!(row.listing.price, Some(RawPrice::Text("19.99".into())));
        assert_eq!(row.listing.description, None);
        assert_eq!(row.label, None);
    }

    #[test]
    fn nulls_are_absent_fields_and_float64_prices_stay_numbers() {
        let b = batch(vec![
            (
                "title",
                Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef,
            ),
            (
                "price",
                Arc::new(Float64Array::from(vec![Some(12.5), None])),
            ),
        ]);
        let columns = ListingColumns::find(&b).unwrap();
        assert_eq!(
            columns.row(0, 1).listing.price,
            Some(RawPrice::Number(12.5))
        );
        let second = columns.row(1, 2);
        assert_eq!(second.listing.title, None);
        assert_eq!(second.listing.price, None);
        assert_eq!(second.line, 2);
    }

    #[test]
    fn a_batch_without_title_is_refused_naming_its_columns() {
        let b = batch(vec![(
            "name",
            Arc::new(StringArray::from(vec!["x"])) as ArrayRef,
        )]);
        let err = ListingColumns::find(&b).err().unwrap().to_string();
        assert!(err.contains("title") && err.contains("`name`"), "{err}");
        assert!(listing_columns(&b.schema()).is_err());
    }

    #[test]
    fn a_column_that_cannot_be_text_is_refused_naming_it() {
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![Some(vec![Some(1)])]);
        let b = batch(vec![
            ("title", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
            ("brand", Arc::new(list)),
        ]);
        let err = ListingColumns::find(&b).err().unwrap().to_string();
        assert!(err.contains("column `brand`"), "{err}");
        let err = listing_columns(&b.schema()).unwrap_err().to_string();
        assert!(err.contains("column `brand`"), "{err}");
    }
}
