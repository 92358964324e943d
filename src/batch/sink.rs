//! Where scores go: one output row per input row, as CSV, JSON Lines or Parquet (chosen by
//! the output's extension), written into a temporary file renamed into place when complete.

use super::{BatchError, RowOutcome};
use crate::brand::BrandMatch;
use arrow::array::{ArrayRef, Float32Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use tempfile::NamedTempFile;

/// Rows gathered before they become one Parquet record batch.
const PARQUET_BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group: the writer holds one row group in memory before writing it.
const PARQUET_ROW_GROUP_ROWS: usize = 131_072;

/// Columns of `scores.csv`: the brand columns are empty when no known brand is named.
pub const SCORES_COLUMNS: [&str; 8] = [
    "id",
    "probability",
    "decision",
    "brand",
    "brand_found_in",
    "brand_how",
    "brand_relation",
    "error",
];

/// The brand columns' texts (empty when no brand was identified).
fn brand_cells(brand: Option<&BrandMatch>) -> [&str; 4] {
    match brand {
        None => [""; 4],
        Some(b) => [
            b.name.as_str(),
            b.found_in.as_str(),
            b.how.as_str(),
            b.relation.as_str(),
        ],
    }
}

#[derive(Clone, Copy)]
enum OutputFormat {
    Csv,
    JsonLines,
    Parquet,
}

/// The output's format, from its extension; anything else is refused before scoring.
fn output_format(path: &Path) -> Result<OutputFormat, BatchError> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".csv") {
        Ok(OutputFormat::Csv)
    } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        Ok(OutputFormat::JsonLines)
    } else if name.ends_with(".parquet") {
        Ok(OutputFormat::Parquet)
    } else {
        Err(BatchError::OutputFormat {
            path: path.to_path_buf(),
        })
    }
}

/// Checks that `path` names an output type knockoff-score can write.
pub fn check_output(path: &Path) -> Result<(), BatchError> {
    output_format(path).map(|_| ())
}

/// Scores are written into a temporary file beside the output and renamed over it only
/// when complete ([`Sink::finish`]): an interrupted run or a full disk never leaves half a
/// scores file under the output's name.
pub(super) enum Sink {
    Csv(Box<csv::Writer<BufWriter<NamedTempFile>>>),
    Json(BufWriter<NamedTempFile>),
    Parquet(Box<ParquetSink>),
}

impl Sink {
    pub(super) fn create(path: &Path) -> Result<Sink, BatchError> {
        let format = output_format(path)?;
        let file = crate::fsutil::staged_file(path, ".knockoff-scores-").map_err(|source| {
            BatchError::Write {
                path: path.to_path_buf(),
                source,
            }
        })?;
        let writer = BufWriter::with_capacity(1 << 20, file);
        Ok(match format {
            OutputFormat::Csv => {
                let mut w = csv::Writer::from_writer(writer);
                w.write_record(SCORES_COLUMNS)
                    .map_err(|e| BatchError::Write {
                        path: path.to_path_buf(),
                        source: e.into(),
                    })?;
                Sink::Csv(Box::new(w))
            }
            OutputFormat::JsonLines => Sink::Json(writer),
            OutputFormat::Parquet => {
                Sink::Parquet(Box::new(ParquetSink::new(writer).map_err(|source| {
                    BatchError::Write {
                        path: path.to_path_buf(),
                        source,
                    }
                })?))
            }
        })
    }

    pub(super) fn write(&mut self, outcome: &RowOutcome) -> std::io::Result<()> {
        match (self, outcome) {
            (Sink::Parquet(sink), outcome) => sink.write(outcome),
            (
                Sink::Csv(w),
                RowOutcome::Scored {
                    id,
                    probability,
                    decision,
                    brand,
                },
            ) => {
                let p = format!("{probability:.6}");
                let [name, found_in, how, relation] = brand_cells(brand.as_ref());
                w.write_record([
                    id.as_str(),
                    &p,
                    decision.as_str(),
                    name,
                    found_in,
                    how,
                    relation,
                    "",
                ])
                .map_err(Into::into)
            }
            (Sink::Csv(w), RowOutcome::Failed { id, error }) => w
                .write_record([id.as_str(), "", "", "", "", "", "", error.as_str()])
                .map_err(Into::into),
            (
                Sink::Json(w),
                RowOutcome::Scored {
                    id,
                    probability,
                    decision,
                    brand,
                },
            ) => {
                let line = serde_json::json!({"id": id, "probability": probability, "decision": decision, "brand": brand});
                writeln!(w, "{line}")
            }
            (Sink::Json(w), RowOutcome::Failed { id, error }) => {
                let line = serde_json::json!({"id": id, "probability": null, "decision": null, "error": error});
                writeln!(w, "{line}")
            }
        }
    }

    /// Flushes the scores and puts them in place under `path`.
    pub(super) fn finish(self, path: &Path) -> std::io::Result<()> {
        let buffered = match self {
            Sink::Csv(w) => w.into_inner().map_err(|e| e.into_error())?,
            Sink::Json(w) => w,
            Sink::Parquet(sink) => sink.finish()?,
        };
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        crate::fsutil::publish(file, path)
    }
}

/// Scores as Parquet: the columns of `scores.csv`, typed (`probability` Float32, the rest
/// Utf8; what is empty in the CSV is null here), in record batches of 8,192 rows and row
/// groups of 131,072 rows, so memory stays flat whatever the row count.
pub(super) struct ParquetSink {
    writer: ArrowWriter<BufWriter<NamedTempFile>>,
    schema: SchemaRef,
    id: StringBuilder,
    probability: Float32Builder,
    decision: StringBuilder,
    brand: [StringBuilder; 4],
    error: StringBuilder,
    rows: usize,
}

/// The Parquet schema of scores, column for column as [`SCORES_COLUMNS`].
pub fn scores_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text(SCORES_COLUMNS[0], false),
        Field::new(SCORES_COLUMNS[1], DataType::Float32, true),
        text(SCORES_COLUMNS[2], true),
        text(SCORES_COLUMNS[3], true),
        text(SCORES_COLUMNS[4], true),
        text(SCORES_COLUMNS[5], true),
        text(SCORES_COLUMNS[6], true),
        text(SCORES_COLUMNS[7], true),
    ]))
}

impl ParquetSink {
    fn new(out: BufWriter<NamedTempFile>) -> std::io::Result<ParquetSink> {
        let schema = scores_schema();
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(PARQUET_ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(properties))
            .map_err(std::io::Error::other)?;
        Ok(ParquetSink {
            writer,
            schema,
            id: StringBuilder::new(),
            probability: Float32Builder::new(),
            decision: StringBuilder::new(),
            brand: std::array::from_fn(|_| StringBuilder::new()),
            error: StringBuilder::new(),
            rows: 0,
        })
    }

    fn write(&mut self, outcome: &RowOutcome) -> std::io::Result<()> {
        match outcome {
            RowOutcome::Scored {
                id,
                probability,
                decision,
                brand,
            } => {
                self.id.append_value(id);
                self.probability.append_value(*probability);
                self.decision.append_value(decision.as_str());
                let cells = brand_cells(brand.as_ref());
                for (builder, cell) in self.brand.iter_mut().zip(cells) {
                    builder.append_option(brand.as_ref().map(|_| cell));
                }
                self.error.append_null();
            }
            RowOutcome::Failed { id, error } => {
                self.id.append_value(id);
                self.probability.append_null();
                self.decision.append_null();
                for builder in &mut self.brand {
                    builder.append_null();
                }
                self.error.append_value(error);
            }
        }
        self.rows += 1;
        if self.rows == PARQUET_BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the gathered rows to the Parquet writer as one record batch.
    fn flush(&mut self) -> std::io::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
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
        let batch =
            RecordBatch::try_new(self.schema.clone(), columns).map_err(std::io::Error::other)?;
        self.rows = 0;
        self.writer.write(&batch).map_err(std::io::Error::other)
    }

    fn finish(mut self) -> std::io::Result<BufWriter<NamedTempFile>> {
        self.flush()?;
        self.writer.into_inner().map_err(std::io::Error::other)
    }
}
