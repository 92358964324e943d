//! The scored population an audit is drawn from and estimated over: each scored row of the
//! input with its id, line, probability and group keys, joined to the scores file that
//! `knockoff-score` wrote for it (one output row per input row, in order).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::AuditError;
use crate::data::currency::CurrencyRates;
use crate::data::listing::FieldLimits;
use crate::data::reader::{Format, RowReader};
use crate::decision::Decision;
use crate::eval::prevalence::ScoredRow;

/// One scored listing of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub id: String,
    pub line: u64,
    pub row: ScoredRow,
}

/// Every scored listing of the input, findable by id.
#[derive(Debug, Clone, Default)]
pub struct Population {
    pub units: Vec<Unit>,
    by_id: HashMap<String, usize>,
}

/// One row of the scores file; failed rows have no probability.
#[derive(Debug, Deserialize)]
struct ScoreLine {
    id: String,
    probability: Option<f32>,
    decision: Option<Decision>,
}

impl Population {
    /// Builds the population from `units`; ids must be present and unique.
    pub fn new(units: Vec<Unit>, file: &str) -> Result<Population, AuditError> {
        let mut by_id: HashMap<String, usize> = HashMap::with_capacity(units.len());
        for (i, unit) in units.iter().enumerate() {
            if unit.id.is_empty() {
                return Err(AuditError::row(
                    file,
                    unit.line,
                    "field `id`: an audit needs an id on every row",
                ));
            }
            if let Some(&first) = by_id.get(&unit.id) {
                return Err(AuditError::row(
                    file,
                    unit.line,
                    format!(
                        "field `id`: `{}` is also on line {}; an audit needs unique ids",
                        unit.id, units[first].line
                    ),
                ));
            }
            by_id.insert(unit.id.clone(), i);
        }
        Ok(Population { units, by_id })
    }

    /// Reads the input again and pairs each row with its line of the scores file.
    pub fn load(
        input: &Path,
        scores: &Path,
        rates: &CurrencyRates,
        limits: &FieldLimits,
    ) -> Result<Population, AuditError> {
        let lines = read_scores(scores)?;
        let file = input.display().to_string();
        let mut units = Vec::with_capacity(lines.len());
        let mut rows = 0usize;
        for (item, score) in RowReader::open(input)?.zip(&lines) {
            rows += 1;
            let (Some(probability), Some(decision)) = (score.probability, score.decision) else {
                continue;
            };
            let Ok(row) = item.and_then(|raw| raw.validate(&file, rates, limits, false)) else {
                continue;
            };
            if row.listing.id != score.id {
                return Err(AuditError::row(&file, row.line, format!(
                    "field `id`: `{}` but the scores file has `{}` here: were they written together?",
                    row.listing.id, score.id
                )));
            }
            units.push(Unit {
                id: row.listing.id.clone(),
                line: row.line,
                row: ScoredRow::new(&row.listing, probability, decision, row.label),
            });
        }
        if rows != lines.len() {
            return Err(AuditError::file(
                scores,
                format!("has {} rows but {file} has {rows}", lines.len()),
            ));
        }
        Population::new(units, &file)
    }

    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    pub fn find(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub fn probabilities(&self) -> Vec<f32> {
        self.units.iter().map(|u| u.row.probability).collect()
    }

    pub fn ids(&self) -> Vec<&str> {
        self.units.iter().map(|u| u.id.as_str()).collect()
    }
}

/// Every row of a scores file (`.csv` or `.jsonl`, as `knockoff-score` writes them).
fn read_scores(path: &Path) -> Result<Vec<ScoreLine>, AuditError> {
    let text = std::fs::read_to_string(path).map_err(|e| AuditError::file(path, e))?;
    match Format::from_path(path)? {
        (Format::Csv, false) => csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .collect::<Result<Vec<ScoreLine>, _>>()
            .map_err(|e| AuditError::file(path, e)),
        (Format::JsonLines, false) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str::<ScoreLine>)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AuditError::file(path, e)),
        _ => Err(AuditError::file(path, "scores must be .csv or .jsonl")),
    }
}
