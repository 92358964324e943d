//! Reads listings from CSV, gzip-compressed CSV, JSON Lines and Parquet files, by file
//! extension, yielding each row with its line number (for Parquet: its row number, 1 for
//! the first row) so every problem can be reported precisely. The formats themselves are
//! read in [`csv`], [`jsonl`] and [`parquet`] (through [`arrow`], the Arrow → row
//! conversion the Python bindings use too); validation is shared.

use crate::data::currency::CurrencyRates;
use crate::data::listing::{parse_label, FieldLimits, Listing, ListingError, RawId, RawListing};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
    Parquet,
}

impl Format {
    /// Picks the format from the extension, looking through a trailing `.gz`.
    pub fn from_path(path: &Path) -> Result<(Format, bool), ReadError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let (stem, gzip) = match name.strip_suffix(".gz") {
            Some(stem) => (stem.to_string(), true),
            None => (name.clone(), false),
        };
        let format = if stem.ends_with(".csv") {
            Format::Csv
        } else if stem.ends_with(".jsonl") || stem.ends_with(".ndjson") || stem.ends_with(".json") {
            Format::JsonLines
        } else if stem.ends_with(".parquet") && !gzip {
            // Parquet compresses inside the file; a gzipped Parquet file cannot be streamed.
            Format::Parquet
        } else {
            return Err(ReadError::Format {
                path: path.to_path_buf(),
            });
        };
        Ok((format, gzip))
    }
}

/// A problem with the file as a whole: it cannot be opened or its header is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unknown file type; use .csv, .csv.gz, .jsonl, .jsonl.gz or .parquet")]
    Format { path: PathBuf },
    #[error("{path}: header: {message}")]
    Header { path: PathBuf, message: String },
}

/// A problem with one row, located by file, line and (where known) field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {}{message}", field.map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct RowError {
    pub file: String,
    pub line: u64,
    pub field: Option<&'static str>,
    pub message: String,
    /// The row's id when it could be read, so outputs can still name the row.
    pub id: Option<String>,
}

/// One row as read, before validation.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRow {
    pub line: u64,
    pub listing: RawListing,
    pub label: Option<String>,
}

/// One row after validation; `label` is `None` where the file has no label for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub listing: Listing,
    pub label: Option<bool>,
}

pub mod arrow;
mod csv;
mod jsonl;
mod parquet;

enum Source {
    Csv(csv::CsvRows),
    Json(jsonl::JsonLines),
    Parquet(Box<parquet::ParquetRows>),
}

/// Streams rows from a file; each item is a row or the error that row had.
pub struct RowReader {
    file: String,
    source: Source,
}

impl RowReader {
    pub fn open(path: &Path) -> Result<RowReader, ReadError> {
        let (format, gzip) = Format::from_path(path)?;
        if format == Format::Parquet {
            return Ok(RowReader {
                file: path.display().to_string(),
                source: Source::Parquet(Box::new(parquet::ParquetRows::open(path)?)),
            });
        }
        let file = File::open(path).map_err(|source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let inner: Box<dyn Read + Send> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
        } else {
            Box::new(file)
        };
        Self::from_reader(inner, format, &path.display().to_string())
    }

    pub fn from_reader(
        inner: Box<dyn Read + Send>,
        format: Format,
        name: &str,
    ) -> Result<RowReader, ReadError> {
        let source = match format {
            Format::Csv => Source::Csv(csv::CsvRows::new(inner, name)?),
            Format::JsonLines => Source::Json(jsonl::JsonLines::new(inner)),
            Format::Parquet => {
                return Err(ReadError::Header {
                    path: PathBuf::from(name),
                    message: "Parquet is read from files only (it needs to seek)".to_string(),
                })
            }
        };
        Ok(RowReader {
            file: name.to_string(),
            source,
        })
    }
}

impl RowError {
    /// A row that could not be read at all: no field to blame, no id known.
    fn unlocated(file: &str, line: u64, message: String) -> RowError {
        RowError {
            file: file.to_string(),
            line,
            field: None,
            message,
            id: None,
        }
    }
}

impl Iterator for RowReader {
    type Item = Result<RawRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.source {
            Source::Csv(rows) => rows.next_row(&self.file),
            Source::Json(rows) => rows.next_row(&self.file),
            Source::Parquet(rows) => rows.next_row(&self.file),
        }
    }
}

impl RawRow {
    /// Validates the listing and, when `label_required`, the label.
    pub fn validate(
        self,
        file: &str,
        rates: &CurrencyRates,
        limits: &FieldLimits,
        label_required: bool,
    ) -> Result<Row, RowError> {
        let id = self.listing.id.clone().map(RawId::into_string);
        let locate = |e: ListingError| RowError {
            file: file.to_string(),
            line: self.line,
            field: Some(e.field),
            message: e.message,
            id: id.clone(),
        };
        let label = match self.label.as_deref().map(str::trim) {
            None | Some("") if !label_required => None,
            other => Some(parse_label(other.unwrap_or("")).map_err(locate)?),
        };
        let listing = self.listing.validate(rates, limits).map_err(locate)?;
        Ok(Row {
            line: self.line,
            listing,
            label,
        })
    }
}

/// Outcome of reading a whole file into memory.
#[derive(Debug, Default)]
pub struct LoadedRows {
    pub rows: Vec<Row>,
    pub skipped: Vec<RowError>,
}

/// Reads and validates every row, stopping at the first bad row once more than
/// `max_bad_rows` have been skipped. Skipped rows are returned, never dropped silently.
pub fn load_rows(
    path: &Path,
    rates: &CurrencyRates,
    limits: &FieldLimits,
    label_required: bool,
    max_bad_rows: usize,
) -> Result<LoadedRows, LoadError> {
    let reader = RowReader::open(path)?;
    let file = path.display().to_string();
    let mut loaded = LoadedRows::default();
    for item in reader {
        match item.and_then(|raw| raw.validate(&file, rates, limits, label_required)) {
            Ok(row) => loaded.rows.push(row),
            Err(error) => {
                if loaded.skipped.len() >= max_bad_rows {
                    return Err(LoadError::TooManyBadRows {
                        error,
                        allowed: max_bad_rows,
                    });
                }
                tracing::warn!(%error, "skipping bad row");
                loaded.skipped.push(error);
            }
        }
    }
    Ok(loaded)
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{error} (stopping: {allowed} bad rows allowed; raise --max-bad-rows to skip more)")]
    TooManyBadRows { error: RowError, allowed: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of `text` read as `format`, from a file named `t`.
    pub(super) fn rows(format: Format, text: &[u8]) -> Vec<Result<RawRow, RowError>> {
        RowReader::from_reader(Box::new(std::io::Cursor::new(text.to_vec())), format, "t")
            .unwrap()
            .collect()
    }

    #[test]
    fn validate_locates_field_errors() {
        let text =
            b"id,title,price,currency,label\nr1,bag,-3,USD,1\nr2,bag,3,USD,7\nr3,bag,3,USD,\n";
        let got: Vec<_> = rows(Format::Csv, text)
            .into_iter()
            .map(|r| {
                r.unwrap().validate(
                    "f.csv",
                    &CurrencyRates::default(),
                    &FieldLimits::default(),
                    true,
                )
            })
            .collect();
        let e = got[0].as_ref().unwrap_err();
        assert_eq!(
            (e.line, e.field, e.id.as_deref()),
            (2, Some("price"), Some("r1"))
        );
        assert_eq!(
            e.to_string(),
            "f.csv:2: field `price`: must not be negative (got -3)"
        );
        assert_eq!(got[1].as_ref().unwrap_err().field, Some("label"));
        assert_eq!(got[2].as_ref().unwrap_err().field, Some("label"));
    }

    #[test]
    fn format_follows_extension() {
        assert_eq!(
            Format::from_path(Path::new("a.csv.gz")).unwrap(),
            (Format::Csv, true)
        );
        assert_eq!(
            Format::from_path(Path::new("a.JSONL")).unwrap(),
            (Format::JsonLines, false)
        );
        assert_eq!(
            Format::from_path(Path::new("a.Parquet")).unwrap(),
            (Format::Parquet, false)
        );
        assert!(Format::from_path(Path::new("a.parquet.gz")).is_err());
        assert!(Format::from_path(Path::new("a.txt")).is_err());
    }
}
