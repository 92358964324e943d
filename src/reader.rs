//! Reads listings from CSV, gzip-compressed CSV and JSON Lines files, by file extension,
//! yielding each row with its line number so every problem can be reported precisely.

use crate::currency::CurrencyRates;
use crate::listing::{
    parse_label, FieldLimits, Listing, ListingError, RawId, RawListing, RawPrice,
};
use serde::Deserialize;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
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
    #[error("{path}: unknown file type; use .csv, .csv.gz, .jsonl or .jsonl.gz")]
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

/// Turns CRLF line ends into LF while streaming. The csv crate reports record lines one
/// short after a CRLF terminator; with plain LF its line numbers are exact, and users need
/// exact lines to find a bad row.
struct CrlfToLf<R> {
    inner: R,
    /// Converted bytes not yet handed out, from `position` on.
    converted: Vec<u8>,
    position: usize,
    /// A `\r` seen last, not yet known to be followed by `\n`.
    pending_cr: bool,
    raw: Vec<u8>,
}

impl<R: Read> CrlfToLf<R> {
    fn new(inner: R) -> Self {
        CrlfToLf {
            inner,
            converted: Vec::new(),
            position: 0,
            pending_cr: false,
            raw: vec![0; 1 << 16],
        }
    }
}

impl<R: Read> Read for CrlfToLf<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.position >= self.converted.len() {
            self.converted.clear();
            self.position = 0;
            let n = self.inner.read(&mut self.raw)?;
            if n == 0 {
                if !self.pending_cr {
                    return Ok(0);
                }
                self.pending_cr = false;
                self.converted.push(b'\r');
                break;
            }
            for &b in &self.raw[..n] {
                if std::mem::take(&mut self.pending_cr) && b != b'\n' {
                    self.converted.push(b'\r');
                }
                if b == b'\r' {
                    self.pending_cr = true;
                } else {
                    self.converted.push(b);
                }
            }
        }
        let available = &self.converted[self.position..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.position += n;
        Ok(n)
    }
}

/// Header positions of the columns we read; others are ignored.
struct Columns {
    id: Option<usize>,
    title: usize,
    description: Option<usize>,
    price: Option<usize>,
    currency: Option<usize>,
    brand: Option<usize>,
    category: Option<usize>,
    label: Option<usize>,
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Result<Columns, String> {
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        Ok(Columns {
            id: find("id"),
            title: find("title").ok_or("missing required column `title`")?,
            description: find("description"),
            price: find("price"),
            currency: find("currency"),
            brand: find("brand"),
            category: find("category"),
            label: find("label"),
        })
    }
}

enum Source {
    Csv {
        reader: csv::Reader<Box<dyn Read + Send>>,
        columns: Columns,
        record: csv::StringRecord,
    },
    Json {
        lines: std::io::Split<BufReader<Box<dyn Read + Send>>>,
        line: u64,
    },
}

/// Streams rows from a file; each item is a row or the error that row had.
pub struct RowReader {
    file: String,
    source: Source,
}

#[derive(Deserialize)]
struct JsonRow {
    #[serde(flatten)]
    listing: RawListing,
    #[serde(default)]
    label: Option<serde_json::Value>,
}

impl RowReader {
    pub fn open(path: &Path) -> Result<RowReader, ReadError> {
        let (format, gzip) = Format::from_path(path)?;
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
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .flexible(false)
                    .from_reader(Box::new(CrlfToLf::new(inner)) as Box<dyn Read + Send>);
                let header = reader.headers().map_err(|e| ReadError::Header {
                    path: PathBuf::from(name),
                    message: e.to_string(),
                })?;
                let columns =
                    Columns::from_header(header).map_err(|message| ReadError::Header {
                        path: PathBuf::from(name),
                        message,
                    })?;
                Source::Csv {
                    reader,
                    columns,
                    record: csv::StringRecord::new(),
                }
            }
            Format::JsonLines => Source::Json {
                lines: BufReader::with_capacity(1 << 16, inner).split(b'\n'),
                line: 0,
            },
        };
        Ok(RowReader {
            file: name.to_string(),
            source,
        })
    }

    fn row_error(&self, line: u64, field: Option<&'static str>, message: String) -> RowError {
        RowError {
            file: self.file.clone(),
            line,
            field,
            message,
            id: None,
        }
    }
}

fn csv_field(record: &csv::StringRecord, index: Option<usize>) -> Option<String> {
    index.and_then(|i| record.get(i)).map(str::to_string)
}

fn csv_error_line(error: &csv::Error) -> u64 {
    error.position().map(|p| p.line()).unwrap_or(0)
}

fn json_label(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Bool(b) => Some(if b { "1" } else { "0" }.to_string()),
        other => Some(other.to_string()),
    }
}

impl Iterator for RowReader {
    type Item = Result<RawRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.source {
            Source::Csv {
                reader,
                columns,
                record,
            } => match reader.read_record(record) {
                Ok(false) => None,
                Ok(true) => {
                    let line = record.position().map(|p| p.line()).unwrap_or(0);
                    let listing = RawListing {
                        id: csv_field(record, columns.id).map(RawId::Text),
                        title: csv_field(record, Some(columns.title)),
                        description: csv_field(record, columns.description),
                        price: csv_field(record, columns.price).map(RawPrice::Text),
                        currency: csv_field(record, columns.currency),
                        brand: csv_field(record, columns.brand),
                        category: csv_field(record, columns.category),
                    };
                    let label = csv_field(record, columns.label);
                    Some(Ok(RawRow {
                        line,
                        listing,
                        label,
                    }))
                }
                Err(error) => {
                    let line = csv_error_line(&error);
                    let message = match error.kind() {
                        csv::ErrorKind::Utf8 { err, .. } => {
                            format!("invalid UTF-8 in column {}", err.field() + 1)
                        }
                        csv::ErrorKind::UnequalLengths {
                            expected_len, len, ..
                        } => format!(
                            "has {len} fields where the header has {expected_len} (broken quoting or a stray comma?)"
                        ),
                        _ => error.to_string(),
                    };
                    let error = self.row_error(line, None, message);
                    Some(Err(error))
                }
            },
            Source::Json { lines, line } => loop {
                *line += 1;
                let current = *line;
                let bytes = match lines.next()? {
                    Ok(bytes) => bytes,
                    Err(e) => return Some(Err(self.row_error(current, None, e.to_string()))),
                };
                let text = match std::str::from_utf8(&bytes) {
                    Ok(text) => text.trim(),
                    Err(_) => {
                        return Some(Err(self.row_error(current, None, "invalid UTF-8".into())))
                    }
                };
                if text.is_empty() {
                    continue;
                }
                return Some(match serde_json::from_str::<JsonRow>(text) {
                    Ok(row) => Ok(RawRow {
                        line: current,
                        listing: row.listing,
                        label: row.label.and_then(json_label),
                    }),
                    Err(e) => Err(self.row_error(current, None, format!("invalid JSON: {e}"))),
                });
            },
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

    fn rows(format: Format, text: &[u8]) -> Vec<Result<RawRow, RowError>> {
        RowReader::from_reader(Box::new(std::io::Cursor::new(text.to_vec())), format, "t")
            .unwrap()
            .collect()
    }

    #[test]
    fn csv_reads_columns_by_name_and_ignores_extras() {
        let text = b"extra,title,price,currency,id,label\nx,Rolex watch,100,USD,a-1,1\ny,\"mug, blue\",,,a-2,0\n";
        let got = rows(Format::Csv, text);
        assert_eq!(got.len(), 2);
        let first = got[0].as_ref().unwrap();
        assert_eq!(first.line, 2);
        assert_eq!(first.listing.title.as_deref(), Some("Rolex watch"));
        assert_eq!(first.label.as_deref(), Some("1"));
        let second = got[1].as_ref().unwrap();
        assert_eq!(second.listing.title.as_deref(), Some("mug, blue"));
        assert_eq!(second.listing.description, None);
    }

    #[test]
    fn csv_line_numbers_hold_for_crlf_and_multiline_fields() {
        let text = b"id,title\r\n1,a\r\n2,\"two\nlines\"\r\n3,c\n4,d\n";
        let lines: Vec<u64> = rows(Format::Csv, text)
            .into_iter()
            .map(|r| r.unwrap().line)
            .collect();
        assert_eq!(lines, vec![2, 3, 5, 6]);
    }

    #[test]
    fn crlf_conversion_survives_any_chunking() {
        struct OneByte(std::io::Cursor<Vec<u8>>);
        impl Read for OneByte {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(1);
                self.0.read(&mut buf[..n])
            }
        }
        let input = b"a\r\nb\rc\r\n\r".to_vec();
        let mut out = Vec::new();
        CrlfToLf::new(OneByte(std::io::Cursor::new(input.clone())))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"a\nb\rc\n\r");
        let mut whole = Vec::new();
        CrlfToLf::new(std::io::Cursor::new(input))
            .read_to_end(&mut whole)
            .unwrap();
        assert_eq!(whole, out);
    }

    #[test]
    fn csv_without_title_column_is_a_header_error() {
        let err = RowReader::from_reader(
            Box::new(std::io::Cursor::new(b"id,name\n1,x\n".to_vec())),
            Format::Csv,
            "f.csv",
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("title"), "{err}");
    }

    #[test]
    fn csv_broken_rows_report_their_line() {
        let text = b"id,title,price\n1,ok,3\n2,\"unclosed,4\n3,fine,5\n";
        let got = rows(Format::Csv, text);
        let err = got.iter().find_map(|r| r.as_ref().err()).expect("an error");
        assert_eq!(err.line, 3);
        assert!(err.message.contains("fields"), "{}", err.message);
    }

    #[test]
    fn csv_invalid_utf8_is_reported_with_line() {
        let mut text = b"id,title\n1,ok\n2,bad ".to_vec();
        text.extend_from_slice(&[0xff, 0xfe]);
        text.extend_from_slice(b"\n3,fine\n");
        let got = rows(Format::Csv, &text);
        assert!(got[0].is_ok());
        let err = got[1].as_ref().unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("UTF-8"));
        assert!(got[2].is_ok(), "reading continues after a bad row");
    }

    #[test]
    fn jsonl_reads_objects_and_reports_bad_lines() {
        let text = b"{\"id\":\"a\",\"title\":\"bag\",\"price\":12.5,\"currency\":\"EUR\",\"label\":1}\n\n{not json}\n{\"title\":\"x\",\"label\":true}\n";
        let got = rows(Format::JsonLines, text);
        assert_eq!(got.len(), 3);
        let first = got[0].as_ref().unwrap();
        assert_eq!(first.label.as_deref(), Some("1"));
        assert_eq!(first.listing.price, Some(RawPrice::Number(12.5)));
        let err = got[1].as_ref().unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(got[2].as_ref().unwrap().label.as_deref(), Some("1"));
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
        assert!(Format::from_path(Path::new("a.parquet")).is_err());
    }
}
