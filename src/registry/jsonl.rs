//! The registry as JSON Lines, one brand a line (`{"name", "aliases", "products"}`), as
//! `knockoff-brands import` reads it and `export` writes it: bad lines are reported by
//! number and field, never dropped silently.

use super::{validate, BrandEntry, RegisteredBrand, RegisteredProduct, ValidEntry};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, Write};

/// One brand with its name, as a line of `knockoff-brands import`/`export` carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedEntry {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub products: Vec<RegisteredProduct>,
}

impl NamedEntry {
    /// Splits the line into the name and what a `PUT` body carries.
    pub fn into_parts(self) -> (String, BrandEntry) {
        let entry = BrandEntry {
            aliases: self.aliases,
            products: self.products,
        };
        (self.name, entry)
    }
}

impl From<RegisteredBrand> for NamedEntry {
    fn from(brand: RegisteredBrand) -> Self {
        NamedEntry {
            name: brand.name,
            aliases: brand.entry.aliases,
            products: brand.entry.products,
        }
    }
}

/// Why one line of an import file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    /// 1-based.
    pub line: usize,
    /// Names the field when one is to blame (`line 3: products[0].currency: ...`).
    pub message: String,
}

/// An import file read and checked: the good entries with their line numbers, and the
/// refused lines.
#[derive(Debug, Default)]
pub struct ReadEntries {
    pub entries: Vec<(usize, ValidEntry)>,
    pub errors: Vec<LineError>,
}

/// Reads and validates every line (blank lines are skipped). A brand named on two lines
/// is refused on the second: which one should win is the file writer's call.
pub fn read_entries(
    reader: impl BufRead,
    known_currency: &dyn Fn(&str) -> bool,
) -> std::io::Result<ReadEntries> {
    let mut read = ReadEntries::default();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (i, text) in reader.lines().enumerate() {
        let line = i + 1;
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        match parse_line(&text, known_currency) {
            Ok(valid) => match first_line.get(&valid.key) {
                Some(first) => read.errors.push(LineError {
                    line,
                    message: format!("name: `{}` is already on line {first}", valid.name),
                }),
                None => {
                    first_line.insert(valid.key.clone(), line);
                    read.entries.push((line, valid));
                }
            },
            Err(message) => read.errors.push(LineError { line, message }),
        }
    }
    Ok(read)
}

fn parse_line(text: &str, known_currency: &dyn Fn(&str) -> bool) -> Result<ValidEntry, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let named: NamedEntry =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            match e.path().to_string() {
                path if path == "." => e.into_inner().to_string(),
                path => format!("{path}: {}", e.into_inner()),
            }
        })?;
    deserializer.end().map_err(|e| e.to_string())?;
    let (name, entry) = named.into_parts();
    validate(&name, &entry, known_currency).map_err(|e| e.to_string())
}

/// Writes `brands` one a line, in the form [`read_entries`] reads.
pub fn write_entries(brands: Vec<RegisteredBrand>, mut out: impl Write) -> std::io::Result<()> {
    for brand in brands {
        serde_json::to_writer(&mut out, &NamedEntry::from(brand))?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur_only(code: &str) -> bool {
        code == "EUR"
    }

    #[test]
    fn good_lines_are_kept_and_bad_ones_reported_by_line_and_field() {
        let file = r#"{"name": "Verdanne", "aliases": ["维丹妮"], "products": [{"name": "Aurora tote", "category": "bags", "list_price": 420, "currency": "EUR"}]}

{"name": "Bad", "products": [{"name": "x", "list_price": "cheap", "currency": "EUR"}]}
{"name": "Odd", "products": [{"name": "x", "list_price": 3, "currency": "XYZ"}]}
{"name": "VERDANNE", "products": [{"name": "x", "list_price": 3, "currency": "EUR"}]}
{"name": "Extra", "products": [], "colour": "red"}
not json
{"name": "Lumen", "products": [{"name": "wallet", "list_price": 90, "currency": "eur"}]}
"#;
        let read = read_entries(file.as_bytes(), &eur_only).unwrap();
        let good: Vec<(usize, &str)> = read
            .entries
            .iter()
            .map(|(l, v)| (*l, v.name.as_str()))
            .collect();
        assert_eq!(good, [(1, "Verdanne"), (8, "Lumen")]);
        let lines: Vec<usize> = read.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7]);
        let messages: Vec<String> = read.errors.iter().map(|e| e.to_string()).collect();
        assert!(
            messages[0].starts_with("line 3: products[0].list_price: "),
            "{messages:?}"
        );
        assert!(
            messages[1].starts_with("line 4: products[0].currency: unknown currency"),
            "{messages:?}"
        );
        assert!(messages[2].contains("already on line 1"), "{messages:?}");
        assert!(messages[3].contains("colour"), "{messages:?}");
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        let brand = RegisteredBrand {
            name: "Verdanne".into(),
            entry: BrandEntry {
                aliases: vec!["维丹妮".into()],
                products: vec![RegisteredProduct {
                    name: "Aurora tote".into(),
                    category: "bags".into(),
                    list_price: 420.5,
                    currency: "EUR".into(),
                }],
            },
            created_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: "2026-01-01T00:00:00.000Z".into(),
        };
        let mut out = Vec::new();
        write_entries(vec![brand.clone()], &mut out).unwrap();
        let read = read_entries(out.as_slice(), &eur_only).unwrap();
        assert!(read.errors.is_empty(), "{:?}", read.errors);
        assert_eq!(read.entries[0].1.entry, brand.entry);
        assert_eq!(read.entries[0].1.name, brand.name);
    }
}
