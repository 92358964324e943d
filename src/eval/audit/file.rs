//! The audit file: the drawn rows written with every input column plus `probability`,
//! `stratum`, `weight` and an empty `label` for reviewers, and the labelled file read back,
//! each bad line refused with its number.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::design::Pick;
use super::AuditError;
use crate::data::reader::Format;

/// Columns the audit adds after the input's own (input columns of these names are left out).
pub const AUDIT_COLUMNS: [&str; 4] = ["probability", "stratum", "weight", "label"];

/// One row of a labelled audit file.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditLabel {
    pub line: u64,
    pub id: String,
    pub stratum: usize,
    pub weight: f64,
    /// `None` while nobody has labelled the row.
    pub label: Option<bool>,
}

/// One row as (column, value) pairs, values as text.
pub(super) type Cells = Vec<(String, String)>;

/// The rows of a Parquet file as [`Cells`] with their row number (from 1), every value as
/// its text (nulls empty), streamed one record batch at a time.
pub(super) fn parquet_cells(
    path: &Path,
) -> Result<impl Iterator<Item = Result<(u64, Cells), AuditError>>, AuditError> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let owned = path.to_path_buf();
    let file = File::open(path).map_err(|e| AuditError::file(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(8192).build())
        .map_err(|e| AuditError::file(path, e))?;
    let mut row = 0u64;
    Ok(reader.flat_map(move |batch| {
        let rows = batch
            .map_err(|e| AuditError::file(&owned, e))
            .and_then(|batch| {
                let options = FormatOptions::default();
                let schema = batch.schema();
                let formatters = batch
                    .columns()
                    .iter()
                    .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| AuditError::file(&owned, e))?;
                let mut rows = Vec::with_capacity(batch.num_rows());
                for r in 0..batch.num_rows() {
                    row += 1;
                    let cells = schema
                        .fields()
                        .iter()
                        .zip(&formatters)
                        .map(|(f, v)| (f.name().clone(), v.value(r).to_string()))
                        .collect();
                    rows.push(Ok((row, cells)));
                }
                Ok(rows)
            });
        match rows {
            Ok(rows) => rows,
            Err(e) => vec![Err(e)],
        }
    }))
}

fn raw_parquet(path: &Path, wanted: &HashSet<&str>) -> Result<RawRecords, AuditError> {
    let (mut found, mut lines) = (RawRecords::new(), HashMap::new());
    for item in parquet_cells(path)? {
        let (row, cells) = item?;
        let id = cells
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("id"))
            .map(|(_, v)| v.clone());
        if let Some(id) = id.filter(|id| wanted.contains(id.as_str())) {
            keep(&mut found, &mut lines, &id, row, cells, path)?;
        }
    }
    Ok(found)
}

fn open(path: &Path) -> Result<(Format, Box<dyn Read>), AuditError> {
    let (format, gzip) = Format::from_path(path)?;
    let file = File::open(path).map_err(|e| AuditError::file(path, e))?;
    let inner: Box<dyn Read> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    Ok((format, inner))
}

/// The drawn input rows as (column, value) pairs, by id; values as written in the input.
type RawRecords = HashMap<String, Cells>;

/// Keeps a drawn row's cells, refusing an id the input has twice (which row a reviewer's
/// label would belong to is then unknowable).
fn keep(
    found: &mut RawRecords,
    lines: &mut HashMap<String, u64>,
    id: &str,
    line: u64,
    cells: Cells,
    path: &Path,
) -> Result<(), AuditError> {
    if let Some(first) = lines.insert(id.to_string(), line) {
        return Err(AuditError::row(
            &path.display().to_string(),
            line,
            format!("field `id`: `{id}` is also on line {first}; an audit needs unique ids"),
        ));
    }
    found.insert(id.to_string(), cells);
    Ok(())
}

fn raw_csv(
    inner: Box<dyn Read>,
    wanted: &HashSet<&str>,
    path: &Path,
) -> Result<RawRecords, AuditError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(inner);
    let header = reader
        .headers()
        .map_err(|e| AuditError::file(path, e))?
        .clone();
    let id_column = header
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("id"));
    let (mut found, mut lines) = (RawRecords::new(), HashMap::new());
    for record in reader.records() {
        let Ok(record) = record else { continue };
        let Some(id) = id_column.and_then(|c| record.get(c)) else {
            continue;
        };
        if wanted.contains(id) {
            let line = record.position().map_or(0, |p| p.line());
            let cells = header.iter().zip(record.iter());
            let cells = cells.map(|(h, v)| (h.to_string(), v.to_string())).collect();
            keep(&mut found, &mut lines, id, line, cells, path)?;
        }
    }
    Ok(found)
}

fn raw_jsonl(
    inner: Box<dyn Read>,
    wanted: &HashSet<&str>,
    path: &Path,
) -> Result<RawRecords, AuditError> {
    let (mut found, mut lines) = (RawRecords::new(), HashMap::new());
    for (number, line) in BufReader::new(inner)
        .lines()
        .map_while(Result::ok)
        .enumerate()
    {
        let Ok(serde_json::Value::Object(object)) = serde_json::from_str(&line) else {
            continue;
        };
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        let Some(id) = object.get("id").map(text) else {
            continue;
        };
        if wanted.contains(id.as_str()) {
            let cells = object.iter().map(|(k, v)| (k.clone(), text(v))).collect();
            keep(&mut found, &mut lines, &id, number as u64 + 1, cells, path)?;
        }
    }
    Ok(found)
}

/// Writes the drawn rows (in input order) to a CSV file: the input's columns, then
/// [`AUDIT_COLUMNS`] with `label` empty.
pub fn write_sample(input: &Path, out: &Path, picks: &[Pick]) -> Result<(), AuditError> {
    let wanted: HashSet<&str> = picks.iter().map(|p| p.id.as_str()).collect();
    let records = match Format::from_path(input)? {
        (Format::Parquet, _) => raw_parquet(input, &wanted)?,
        _ => match open(input)? {
            (Format::Csv, inner) => raw_csv(inner, &wanted, input)?,
            (_, inner) => raw_jsonl(inner, &wanted, input)?,
        },
    };
    let is_ours = |c: &str| {
        AUDIT_COLUMNS
            .iter()
            .any(|a| a.eq_ignore_ascii_case(c.trim()))
    };
    let mut columns: Vec<String> = Vec::new();
    for cells in records.values() {
        for (c, _) in cells {
            if !is_ours(c) && !columns.contains(c) {
                columns.push(c.clone());
            }
        }
    }
    columns.sort_by_key(|c| {
        records
            .values()
            .flat_map(|r| r.iter().position(|(k, _)| k == c))
            .min()
    });
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .chain(AUDIT_COLUMNS)
        .collect();
    writer
        .write_record(&header)
        .map_err(|e| AuditError::file(out, e))?;
    for pick in picks {
        let cells = records.get(&pick.id);
        let value = |c: &String| {
            cells
                .and_then(|r| r.iter().find(|(k, _)| k == c))
                .map_or("", |(_, v)| v.as_str())
                .to_string()
        };
        let mut row: Vec<String> = columns.iter().map(value).collect();
        row.extend([
            format!("{:.6}", pick.probability),
            pick.stratum.to_string(),
            format!("{:.6}", pick.weight),
            String::new(),
        ]);
        writer
            .write_record(&row)
            .map_err(|e| AuditError::file(out, e))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| AuditError::file(out, e.error()))?;
    crate::fsutil::write_atomically(out, &bytes, ".knockoff-audit-")
        .map_err(|e| AuditError::file(out, e))
}

/// Reads a labelled audit file: `id`, `stratum`, `weight` and `label` (`0`, `1` or empty
/// for not yet labelled) by header name; other columns are ignored. Refuses with the line:
/// a missing column, a bad stratum, weight or label, and an id seen before.
pub fn read_labels(path: &Path) -> Result<Vec<AuditLabel>, AuditError> {
    let name = path.display().to_string();
    let (_, inner) = open(path)?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(inner);
    let header = reader
        .headers()
        .map_err(|e| AuditError::file(path, e))?
        .clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| AuditError::file(path, format!("missing column `{name}`")))
    };
    let (id, stratum, weight, label) = (
        column("id")?,
        column("stratum")?,
        column("weight")?,
        column("label")?,
    );
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| AuditError::file(path, e))?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = |i: usize| record.get(i).unwrap_or("").trim();
        let bad = |field: &str, why: String| {
            AuditError::row(&name, line, format!("field `{field}`: {why}"))
        };
        let row = AuditLabel {
            line,
            id: record.get(id).unwrap_or("").to_string(),
            stratum: cell(stratum).parse().map_err(|_| {
                bad(
                    "stratum",
                    format!("`{}` is not a stratum number", cell(stratum)),
                )
            })?,
            weight: cell(weight)
                .parse::<f64>()
                .ok()
                .filter(|w| w.is_finite() && *w >= 1.0)
                .ok_or_else(|| {
                    bad(
                        "weight",
                        format!("`{}` is not a weight of at least 1", cell(weight)),
                    )
                })?,
            label: match cell(label) {
                "" => None,
                "0" => Some(false),
                "1" => Some(true),
                other => return Err(bad("label", format!("`{other}` is not 0, 1 or empty"))),
            },
        };
        if let Some(first) = seen.insert(row.id.clone(), line) {
            return Err(bad("id", format!("`{}` is also on line {first}", row.id)));
        }
        rows.push(row);
    }
    Ok(rows)
}
