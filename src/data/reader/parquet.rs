//! Parquet rows: columns found by name (the same names as the CSV listing schema), read one
//! record batch at a time, row group after row group, so a file of any size is never held
//! in memory; rows are numbered from 1 (the first data row) so problems can be located.

use super::arrow::{listing_columns, ListingColumns};
use super::{RawRow, ReadError, RowError};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use std::fs::File;
use std::path::Path;

/// Rows per record batch read.
const BATCH_ROWS: usize = 8192;

/// A batch being handed out row by row.
struct Batch {
    columns: ListingColumns,
    rows: usize,
}

/// A Parquet file being read row by row.
pub(super) struct ParquetRows {
    reader: ParquetRecordBatchReader,
    batch: Option<Batch>,
    position: usize,
    /// Rows handed out so far.
    row: u64,
    /// Set after a read error: the rest of the file cannot be located, so reading stops.
    stopped: bool,
}

impl ParquetRows {
    /// Opens the file and reads its schema; a file without a `title` column, or with a
    /// listing column of a type that cannot be read, is refused as a whole. Only the listing
    /// columns are read.
    pub(super) fn open(path: &Path) -> Result<ParquetRows, ReadError> {
        let file = File::open(path).map_err(|source| ReadError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let header = |message: String| ReadError::Header {
            path: path.to_path_buf(),
            message,
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| header(format!("not a readable Parquet file: {e}")))?;
        let indices = listing_columns(builder.schema()).map_err(|e| header(e.to_string()))?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| header(e.to_string()))?;
        Ok(ParquetRows {
            reader,
            batch: None,
            position: 0,
            row: 0,
            stopped: false,
        })
    }

    /// The next row, or the error that row had; `None` at the end of the file.
    pub(super) fn next_row(&mut self, file: &str) -> Option<Result<RawRow, RowError>> {
        if self.stopped {
            return None;
        }
        while self.batch.as_ref().is_none_or(|b| self.position >= b.rows) {
            let batch = match self.reader.next()? {
                Ok(batch) => ListingColumns::find(&batch)
                    .map(|columns| Batch {
                        columns,
                        rows: batch.num_rows(),
                    })
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match batch {
                Ok(batch) => {
                    self.batch = Some(batch);
                    self.position = 0;
                }
                Err(e) => {
                    self.stopped = true;
                    return Some(Err(RowError::unlocated(
                        file,
                        self.row + 1,
                        format!("cannot read Parquet data from this row on: {e}"),
                    )));
                }
            }
        }
        let batch = self.batch.as_ref()?;
        let i = self.position;
        self.position += 1;
        self.row += 1;
        Some(Ok(batch.columns.row(i, self.row)))
    }
}

#[cfg(test)]
mod tests {
    use crate::data::listing::{RawId, RawPrice};
    use crate::data::reader::RowReader;
    use arrow::array::{
        ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    };
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;

    /// Writes `columns` to a Parquet file of row groups of two rows.
    fn write(columns: Vec<(&str, ArrayRef)>) -> tempfile::TempPath {
        let path = tempfile::Builder::new()
            .suffix(".parquet")
            .tempfile()
            .unwrap()
            .into_temp_path();
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch =
            RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect())
                .unwrap();
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(2))
            .build();
        let file = std::fs::File::create(&path).unwrap();
        let mut writer = ArrowWriter::try_new(file, schema, Some(properties)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        path
    }

    #[test]
    fn typed_columns_are_read_by_name_across_row_groups() {
        let path = write(vec![
            (
                "Label",
                Arc::new(BooleanArray::from(vec![true, false, true])),
            ),
            ("extra", Arc::new(StringArray::from(vec!["x", "y", "z"]))),
            ("ID", Arc::new(Int64Array::from(vec![7, 8, 9]))),
            (
                "price",
                Arc::new(Float64Array::from(vec![Some(1.5), None, Some(3.0)])),
            ),
            (
                "title",
                Arc::new(StringArray::from(vec![Some("bag"), None, Some("mug")])),
            ),
        ]);
        let rows: Vec<_> = RowReader::open(&path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(rows[0].listing.id, Some(RawId::Integer(7)));
        assert_eq!(rows[0].listing.price, Some(RawPrice::Number(1.5)));
        assert_eq!(rows[0].label.as_deref(), Some("true"));
        assert_eq!(rows[1].listing.title, None);
        assert_eq!(rows[1].listing.price, None);
        assert_eq!(rows[2].listing.title.as_deref(), Some("mug"));
        assert_eq!(rows[2].listing.currency, None);
    }

    #[test]
    fn unreadable_files_are_refused_with_the_reason() {
        let path = write(vec![("title", Arc::new(Int64Array::from(vec![1])))]);
        // An integer title is read as its text.
        assert!(RowReader::open(&path).is_ok());
        let junk = tempfile::Builder::new()
            .suffix(".parquet")
            .tempfile()
            .unwrap();
        std::fs::write(junk.path(), b"not parquet").unwrap();
        let error = RowReader::open(junk.path()).err().unwrap().to_string();
        assert!(error.contains("not a readable Parquet file"), "{error}");
        let no_title = write(vec![("name", Arc::new(StringArray::from(vec!["a"])))]);
        let error = RowReader::open(&no_title).err().unwrap().to_string();
        assert!(
            error.contains("missing required column `title` (columns: `name`)"),
            "{error}"
        );
        // A listing column that is not one value is refused as a whole, naming it.
        let list = arrow::array::ListArray::from_iter_primitive::<arrow::datatypes::Int64Type, _, _>(
            vec![Some(vec![Some(1)])],
        );
        let nested = write(vec![
            ("title", Arc::new(StringArray::from(vec!["a"]))),
            ("brand", Arc::new(list)),
        ]);
        let error = RowReader::open(&nested).err().unwrap().to_string();
        assert!(error.contains("column `brand`"), "{error}");
    }
}
