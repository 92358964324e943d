//! Listing CSV → Parquet, for tests and benchmarks: the CSV listing columns, `price` as
//! Float64 and every other column as Utf8, streamed batch by batch.

use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// Converts the listing CSV at `csv` into a Parquet file at `parquet`; returns the rows.
pub fn csv_to_parquet(csv: &Path, parquet: &Path) -> Result<usize, Box<dyn std::error::Error>> {
    let mut header = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(File::open(csv)?), &mut header)?;
    let fields: Vec<Field> = header
        .trim_end()
        .split(',')
        .map(|name| match name {
            "price" => Field::new(name, DataType::Float64, true),
            _ => Field::new(name, DataType::Utf8, true),
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_header(true)
        .with_batch_size(8192)
        .build(File::open(csv)?)?;
    let mut writer = ArrowWriter::try_new(File::create(parquet)?, schema, None)?;
    let mut rows = 0;
    for batch in reader {
        let batch = batch?;
        rows += batch.num_rows();
        writer.write(&batch)?;
    }
    writer.close()?;
    Ok(rows)
}
