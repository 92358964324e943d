//! Arrow record batches in the listing schema → knockoff's raw rows, and scored rows → an Arrow
//! batch with the columns of `scores.csv`, typed.
//!
//! Columns are found by name as in the CSV reader (trimmed, any case); other columns are
//! ignored. Text columns may be any type Arrow can cast to text (strings of any width,
//! dictionaries, numbers). A `Float64` price is taken as the number it is; any other price type
//! is read as its text, as a CSV cell would be, so `19.99` stored as `Float32` is 19.99.

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Builder, Float64Array, Int64Array, LargeStringArray,
    RecordBatch, StringBuilder,
};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use arrow::error::ArrowError;
use knockoff::batch::{ChunkRow, RowOutcome, SCORES_COLUMNS};
use knockoff::brand::BrandMatch;
use knockoff::data::listing::{RawId, RawListing, RawPrice};
use knockoff::data::reader::RawRow;
use std::sync::Arc;

/// A problem with the input as a whole (its schema), not with one row.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("missing required column `title` (columns: {columns})")]
    MissingTitle { columns: String },
    #[error("column `{column}`: cannot read {data_type} as {wanted}: {source}")]
    Column {
        column: String,
        data_type: DataType,
        wanted: &'static str,
        source: ArrowError,
    },
    #[error("building the scores table: {0}")]
    Output(#[source] ArrowError),
}

/// Casts fail loudly: a value that does not fit is an error naming the column, never a null.
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

/// The `title` column's position; a schema without one is refused, naming the columns it has.
pub fn title_column(schema: &Schema) -> Result<usize, ConvertError> {
    match column_index(schema, "title") {
        Some(index) => Ok(index),
        None => Err(ConvertError::MissingTitle {
            columns: schema
                .fields()
                .iter()
                .map(|f| format!("`{}`", f.name()))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

fn cast(
    column: &str,
    array: &ArrayRef,
    to: &DataType,
    wanted: &'static str,
) -> Result<ArrayRef, ConvertError> {
    cast_with_options(array, to, &STRICT).map_err(|source| ConvertError::Column {
        column: column.to_string(),
        data_type: array.data_type().clone(),
        wanted,
        source,
    })
}

fn as_text(column: &str, array: &ArrayRef) -> Result<LargeStringArray, ConvertError> {
    // Arrow can print lists and structs as text, but a listing field is one value.
    if array.data_type().is_nested() {
        return Err(ConvertError::Column {
            column: column.to_string(),
            data_type: array.data_type().clone(),
            wanted: "text",
            source: ArrowError::CastError("nested values are not listing fields".into()),
        });
    }
    Ok(cast(column, array, &DataType::LargeUtf8, "text")?
        .as_string::<i64>()
        .clone())
}

fn text_cell(array: &LargeStringArray, row: usize) -> Option<String> {
    (!array.is_null(row)).then(|| array.value(row).to_string())
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
    pub fn find(batch: &RecordBatch) -> Result<ListingColumns, ConvertError> {
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
            Some((_, array)) if array.data_type() == &DataType::Float64 => {
                Some(PriceColumn::Number(
                    array
                        .as_primitive::<arrow::datatypes::Float64Type>()
                        .clone(),
                ))
            }
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

    /// Row `row` as read, numbered `line` (1-based across everything given to one call).
    pub fn row(&self, row: usize, line: u64) -> RawRow {
        let text = |column: &Option<LargeStringArray>| {
            column.as_ref().and_then(|array| text_cell(array, row))
        };
        let id = self.id.as_ref().and_then(|column| match column {
            IdColumn::Integer(array) => {
                (!array.is_null(row)).then(|| RawId::Integer(array.value(row)))
            }
            IdColumn::Text(array) => text_cell(array, row).map(RawId::Text),
        });
        let price = self.price.as_ref().and_then(|column| match column {
            PriceColumn::Number(array) => {
                (!array.is_null(row)).then(|| RawPrice::Number(array.value(row)))
            }
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

/// The scores' schema: the columns of `scores.csv`, `probability` as `Float32` (the model's
/// own precision), the others text; everything but `id` is null where it does not apply.
pub fn scores_schema() -> SchemaRef {
    let fields: Vec<Field> = SCORES_COLUMNS
        .iter()
        .map(|&name| match name {
            "id" => Field::new(name, DataType::Utf8, false),
            "probability" => Field::new(name, DataType::Float32, true),
            _ => Field::new(name, DataType::Utf8, true),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// The brand columns' texts, in [`SCORES_COLUMNS`] order.
fn brand_cells(brand: &BrandMatch) -> [&str; 4] {
    [
        brand.name.as_str(),
        brand.found_in.as_str(),
        brand.how.as_str(),
        brand.relation.as_str(),
    ]
}

/// Collects scored rows, in order, into one batch of [`scores_schema`].
pub struct ScoresBuilder {
    id: StringBuilder,
    probability: Float32Builder,
    decision: StringBuilder,
    brand: [StringBuilder; 4],
    error: StringBuilder,
}

impl ScoresBuilder {
    pub fn with_capacity(rows: usize) -> ScoresBuilder {
        let text = || StringBuilder::with_capacity(rows, rows * 8);
        ScoresBuilder {
            id: text(),
            probability: Float32Builder::with_capacity(rows),
            decision: text(),
            brand: [text(), text(), text(), text()],
            error: StringBuilder::new(),
        }
    }

    pub fn push(&mut self, row: &ChunkRow) {
        match &row.outcome {
            RowOutcome::Scored {
                id,
                probability,
                decision,
                brand,
            } => {
                self.id.append_value(id);
                self.probability.append_value(*probability);
                self.decision.append_value(decision.as_str());
                match brand {
                    Some(brand) => {
                        for (builder, cell) in self.brand.iter_mut().zip(brand_cells(brand)) {
                            builder.append_value(cell);
                        }
                    }
                    None => self.brand.iter_mut().for_each(|b| b.append_null()),
                }
                self.error.append_null();
            }
            RowOutcome::Failed { id, error } => {
                self.id.append_value(id);
                self.probability.append_null();
                self.decision.append_null();
                self.brand.iter_mut().for_each(|b| b.append_null());
                self.error.append_value(row_error_text(row, error));
            }
        }
    }

    pub fn finish(mut self) -> Result<RecordBatch, ConvertError> {
        let [brand, found_in, how, relation] = &mut self.brand;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.probability.finish()),
            Arc::new(self.decision.finish()),
            Arc::new(brand.finish()),
            Arc::new(found_in.finish()),
            Arc::new(how.finish()),
            Arc::new(relation.finish()),
            Arc::new(self.error.finish()),
        ];
        RecordBatch::try_new(scores_schema(), columns).map_err(ConvertError::Output)
    }
}

/// Why a row was not scored, without the file and line a file's error starts with: the row's
/// place in the output is its place in the input.
fn row_error_text(row: &ChunkRow, fallback: &str) -> String {
    match &row.error {
        Some(error) => match error.field {
            Some(field) => format!("field `{field}`: {}", error.message),
            None => error.message.clone(),
        },
        None => fallback.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float32Array, Int32Array, StringArray};

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
    }

    #[test]
    fn a_column_that_cannot_be_text_is_refused_naming_it() {
        let list =
            arrow::array::ListArray::from_iter_primitive::<Int64Type, _, _>(vec![Some(vec![
                Some(1),
            ])]);
        let b = batch(vec![
            ("title", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
            ("brand", Arc::new(list)),
        ]);
        let err = ListingColumns::find(&b).err().unwrap().to_string();
        assert!(err.contains("column `brand`"), "{err}");
    }

    #[test]
    fn the_scores_schema_has_the_scores_csv_columns() {
        let names: Vec<String> = scores_schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, SCORES_COLUMNS);
    }
}
