//! Scored rows → an Arrow batch with the columns of `scores.csv`, typed. Arrow record
//! batches in the listing schema are read into rows by the library's own conversion
//! ([`knockoff::data::reader::arrow`], the one Parquet input to `knockoff-score` uses), so
//! the package and the binary read the same cells as the same fields.

use arrow::array::{ArrayRef, Float32Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use knockoff::batch::{ChunkRow, RowOutcome, SCORES_COLUMNS};
use knockoff::brand::BrandMatch;
pub use knockoff::data::reader::arrow::{title_column, ColumnsError, ListingColumns};
use std::sync::Arc;

/// A problem with the input as a whole (its schema or a column's type), not with one row,
/// or with building the output.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Columns(#[from] ColumnsError),
    #[error("building the scores table: {0}")]
    Output(#[source] ArrowError),
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
