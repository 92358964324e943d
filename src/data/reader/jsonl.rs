//! JSON Lines rows (plain or gzip-compressed): one listing object a line, blank lines
//! skipped, each unreadable line reported with its number so reading goes on.

use super::{RawRow, RowError};
use crate::data::listing::RawListing;
use serde::Deserialize;
use std::io::{BufRead, BufReader, Read};

#[derive(Deserialize)]
struct JsonRow {
    #[serde(flatten)]
    listing: RawListing,
    #[serde(default)]
    label: Option<serde_json::Value>,
}

/// A JSON Lines file being read line by line.
pub(super) struct JsonLines {
    lines: std::io::Split<BufReader<Box<dyn Read + Send>>>,
    line: u64,
}

impl JsonLines {
    pub(super) fn new(inner: Box<dyn Read + Send>) -> JsonLines {
        JsonLines {
            lines: BufReader::with_capacity(1 << 16, inner).split(b'\n'),
            line: 0,
        }
    }

    /// The next non-blank line as a row, or the error it had; `None` at the end.
    pub(super) fn next_row(&mut self, file: &str) -> Option<Result<RawRow, RowError>> {
        loop {
            self.line += 1;
            let current = self.line;
            let bytes = match self.lines.next()? {
                Ok(bytes) => bytes,
                Err(e) => return Some(Err(RowError::unlocated(file, current, e.to_string()))),
            };
            let text = match std::str::from_utf8(&bytes) {
                Ok(text) => text.trim(),
                Err(_) => {
                    return Some(Err(RowError::unlocated(
                        file,
                        current,
                        "invalid UTF-8".into(),
                    )))
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
                Err(e) => Err(RowError::unlocated(
                    file,
                    current,
                    format!("invalid JSON: {e}"),
                )),
            });
        }
    }
}

/// A label as the string the validator parses: `true`/`false` become `1`/`0`.
fn json_label(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Bool(b) => Some(if b { "1" } else { "0" }.to_string()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use crate::data::listing::RawPrice;
    use crate::data::reader::tests::rows;
    use crate::data::reader::Format;

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
}
