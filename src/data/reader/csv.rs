//! CSV rows (plain or gzip-compressed): columns found by header name, exact line numbers
//! even with CRLF line ends and quoted multi-line fields, and each broken row reported on
//! its own so reading goes on.

use super::{RawRow, ReadError, RowError};
use crate::data::listing::{RawId, RawListing, RawPrice};
use std::io::Read;
use std::path::PathBuf;

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

/// A CSV file being read row by row.
pub(super) struct CsvRows {
    reader: csv::Reader<Box<dyn Read + Send>>,
    columns: Columns,
    record: csv::StringRecord,
}

impl CsvRows {
    /// Reads the header; a file without a `title` column is refused as a whole.
    pub(super) fn new(inner: Box<dyn Read + Send>, name: &str) -> Result<CsvRows, ReadError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(Box::new(CrlfToLf::new(inner)) as Box<dyn Read + Send>);
        let header = reader.headers().map_err(|e| ReadError::Header {
            path: PathBuf::from(name),
            message: e.to_string(),
        })?;
        let columns = Columns::from_header(header).map_err(|message| ReadError::Header {
            path: PathBuf::from(name),
            message,
        })?;
        Ok(CsvRows {
            reader,
            columns,
            record: csv::StringRecord::new(),
        })
    }

    /// The next row, or the error that row had; `None` at the end of the file.
    pub(super) fn next_row(&mut self, file: &str) -> Option<Result<RawRow, RowError>> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => Some(Ok(self.raw_row())),
            Err(error) => Some(Err(RowError::unlocated(
                file,
                csv_error_line(&error),
                csv_error_message(&error),
            ))),
        }
    }

    fn raw_row(&self) -> RawRow {
        let (record, columns) = (&self.record, &self.columns);
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
        RawRow {
            line,
            listing,
            label: csv_field(record, columns.label),
        }
    }
}

fn csv_field(record: &csv::StringRecord, index: Option<usize>) -> Option<String> {
    index.and_then(|i| record.get(i)).map(str::to_string)
}

fn csv_error_line(error: &csv::Error) -> u64 {
    error.position().map(|p| p.line()).unwrap_or(0)
}

/// What went wrong with a row, in words that point at the fix.
fn csv_error_message(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::Utf8 { err, .. } => {
            format!("invalid UTF-8 in column {}", err.field() + 1)
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!(
            "has {len} fields where the header has {expected_len} (broken quoting or a stray comma?)"
        ),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::reader::tests::rows;
    use crate::data::reader::{Format, RowReader};

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
}
