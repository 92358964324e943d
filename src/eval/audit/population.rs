//! The scored population an audit is drawn from and estimated over, read as streams: the
//! scores file that `knockoff-score` wrote (one output row per input row, in order) for the
//! draw, and the input joined to it for the few rows an audit file names. Memory follows
//! the audit's size, never the input's.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
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

/// One scored row of a scores file as the draw sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredId {
    pub id: String,
    pub probability: f32,
    /// Line (CSV record) of the scores file, for errors.
    pub line: u64,
}

/// How many listings of the input were scored, and the ones an audit file names, by id.
#[derive(Debug, Clone, Default)]
pub struct Population {
    scored: usize,
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

type ScoreLines = Box<dyn Iterator<Item = Result<(u64, ScoreLine), AuditError>>>;

/// Every row of a scores file (`.csv`, `.jsonl` or `.parquet`, as `knockoff-score` writes
/// them), read as a stream, with its line (its row number in Parquet).
fn score_lines(path: &Path) -> Result<ScoreLines, AuditError> {
    let owned = path.to_path_buf();
    let err = move |e: &dyn std::fmt::Display, line: u64| {
        AuditError::row(&owned.display().to_string(), line, e.to_string())
    };
    let file = File::open(path).map_err(|e| AuditError::file(path, e))?;
    match Format::from_path(path)? {
        (Format::Csv, false) => Ok(Box::new(
            csv::Reader::from_reader(BufReader::new(file))
                .into_deserialize::<ScoreLine>()
                .enumerate()
                .map(move |(i, r)| {
                    let line = i as u64 + 2;
                    r.map(|s| (line, s)).map_err(|e| err(&e, line))
                }),
        )),
        (Format::JsonLines, false) => Ok(Box::new(
            BufReader::new(file)
                .lines()
                .enumerate()
                .filter(|(_, l)| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
                .map(move |(i, l)| {
                    let line = i as u64 + 1;
                    let text = l.map_err(|e| err(&e, line))?;
                    serde_json::from_str::<ScoreLine>(&text)
                        .map(|s| (line, s))
                        .map_err(|e| err(&e, line))
                }),
        )),
        (Format::Parquet, _) => Ok(Box::new(super::file::parquet_cells(path)?.map(|item| {
            let (row, cells) = item?;
            let cell = |name: &str| {
                cells
                    .iter()
                    .find(|(k, _)| k == name)
                    .map_or("", |(_, v)| v.as_str())
            };
            let line = ScoreLine {
                id: cell("id").to_string(),
                probability: cell("probability").parse().ok(),
                decision: serde_json::from_value(serde_json::Value::String(
                    cell("decision").to_string(),
                ))
                .ok(),
            };
            Ok((row, line))
        }))),
        _ => Err(AuditError::file(
            path,
            "scores must be .csv, .jsonl or .parquet",
        )),
    }
}

/// The scored rows of a scores file (failed rows left out), in order, as a stream; a
/// scored row without an id is refused with its line.
pub fn scored_rows(
    path: &Path,
) -> Result<impl Iterator<Item = Result<ScoredId, AuditError>>, AuditError> {
    let file = path.display().to_string();
    Ok(score_lines(path)?.filter_map(move |item| match item {
        Ok((line, s)) if s.probability.is_some() && s.id.is_empty() => Some(Err(AuditError::row(
            &file,
            line,
            "field `id`: an audit needs an id on every row",
        ))),
        Ok((line, s)) => s.probability.map(|probability| {
            Ok(ScoredId {
                id: s.id,
                probability,
                line,
            })
        }),
        Err(e) => Some(Err(e)),
    }))
}

impl Population {
    /// Reads the input again beside its scores file, counting the scored listings and
    /// keeping those whose id is in `keep`; kept ids must be unique in the input.
    pub fn load(
        input: &Path,
        scores: &Path,
        rates: &CurrencyRates,
        limits: &FieldLimits,
        keep: &HashSet<&str>,
    ) -> Result<Population, AuditError> {
        let file = input.display().to_string();
        let mut lines = score_lines(scores)?;
        let mut population = Population::default();
        let mut rows = 0usize;
        for item in RowReader::open(input)? {
            let Some(score) = lines.next() else {
                return Err(AuditError::file(
                    scores,
                    format!("has fewer rows than {file} ({rows}): were they written together?"),
                ));
            };
            let (_, score) = score?;
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
            population.scored += 1;
            if keep.contains(row.listing.id.as_str()) {
                population.keep(
                    Unit {
                        id: row.listing.id.clone(),
                        line: row.line,
                        row: ScoredRow::new(&row.listing, probability, decision, row.label),
                    },
                    &file,
                )?;
            }
        }
        if lines.next().is_some() {
            return Err(AuditError::file(
                scores,
                format!("has more rows than {file} ({rows}): were they written together?"),
            ));
        }
        Ok(population)
    }

    /// A population of `units`, every one scored and kept; ids must be present and unique.
    pub fn new(units: Vec<Unit>, file: &str) -> Result<Population, AuditError> {
        let mut population = Population::default();
        for unit in units {
            population.scored += 1;
            population.keep(unit, file)?;
        }
        Ok(population)
    }

    fn keep(&mut self, unit: Unit, file: &str) -> Result<(), AuditError> {
        if unit.id.is_empty() {
            return Err(AuditError::row(
                file,
                unit.line,
                "field `id`: an audit needs an id on every row",
            ));
        }
        if let Some(&first) = self.by_id.get(&unit.id) {
            return Err(AuditError::row(
                file,
                unit.line,
                format!(
                    "field `id`: `{}` is also on line {}; an audit needs unique ids",
                    unit.id, self.units[first].line
                ),
            ));
        }
        self.by_id.insert(unit.id.clone(), self.units.len());
        self.units.push(unit);
        Ok(())
    }

    /// Scored listings in the input (kept or not).
    pub fn len(&self) -> usize {
        self.scored
    }

    pub fn is_empty(&self) -> bool {
        self.scored == 0
    }

    /// The kept unit with this id.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scored_rows_stream_both_formats_skip_failed_rows_and_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let csv_path = dir.path().join("s.csv");
        std::fs::write(
            &csv_path,
            "id,probability,decision,error\na,0.25,allow,\nb,,,bad price\nc,0.9,block,\n",
        )
        .unwrap();
        let rows: Vec<ScoredId> = scored_rows(&csv_path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[1].id.as_str(), rows[1].line), ("c", 4));
        let jsonl = dir.path().join("s.jsonl");
        std::fs::write(
            &jsonl,
            "{\"id\":\"a\",\"probability\":0.5,\"decision\":\"review\"}\n\nnot json\n",
        )
        .unwrap();
        let mut rows = scored_rows(&jsonl).unwrap();
        assert_eq!(rows.next().unwrap().unwrap().probability, 0.5);
        let err = rows.next().unwrap().unwrap_err().to_string();
        assert!(err.contains("s.jsonl:3:"), "{err}");
    }

    #[test]
    fn load_counts_every_scored_row_keeps_only_the_named_and_checks_the_pairing() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(
            &input,
            "id,title,price,currency\na,red mug,3,USD\nb,blue mug,x,USD\nc,green mug,4,USD\na2,cup,5,USD\n",
        )
        .unwrap();
        let scores = dir.path().join("s.csv");
        let lines = "id,probability,decision,error\na,0.1,allow,\nb,,,bad price\nc,0.7,review,\na2,0.2,allow,\n";
        std::fs::write(&scores, lines).unwrap();
        let (rates, limits) = (CurrencyRates::default(), FieldLimits::default());
        let keep: HashSet<&str> = ["c", "zz"].into();
        let p = Population::load(&input, &scores, &rates, &limits, &keep).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p.units.len(), 1);
        assert_eq!(p.units[p.find("c").unwrap()].line, 4);
        assert_eq!(p.find("a"), None);
        // A scores file from another input is refused.
        std::fs::write(&scores, lines.replace("\nc,", "\nq,")).unwrap();
        let err = Population::load(&input, &scores, &rates, &limits, &keep).unwrap_err();
        assert!(err.to_string().contains("in.csv:4: field `id`"), "{err}");
        let short: String = lines.lines().take(4).map(|l| format!("{l}\n")).collect();
        std::fs::write(&scores, short).unwrap();
        let err = Population::load(&input, &scores, &rates, &limits, &keep).unwrap_err();
        assert!(err.to_string().contains("fewer rows"), "{err}");
    }
}
