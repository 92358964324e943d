//! `knockoff-brands`: bulk import and export of the brand registry in the embedded store
//! (one brand a line of JSON, as `PUT /v1/brands/{name}` takes it, plus its `name`).

use anyhow::Context;
use clap::{Parser, Subcommand};
use knockoff::model::Model;
use knockoff::registry::jsonl::{read_entries, write_entries, LineError};
use knockoff::registry::ValidEntry;
use knockoff::store::brands::Actor;
use knockoff::store::{Store, DEFAULT_STORE};
use knockoff::telemetry::{self, LogFormat};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Import brands into the registry from JSON Lines, or export it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
    #[arg(long, env = "KNOCKOFF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or replace the brands of FILE (one `{"name", "aliases", "products"}` a line),
    /// each checked as `PUT /v1/brands/{name}` checks it. Bad lines are reported by number
    /// and skipped; the good ones are written. Tokens of new brands are printed (JSON Lines).
    Import {
        /// The store file (created if new).
        #[arg(long, env = "KNOCKOFF_STORE", default_value = DEFAULT_STORE)]
        store: PathBuf,
        /// The model whose currency table list prices must use.
        #[arg(long, env = "KNOCKOFF_MODEL", default_value = "models/default")]
        model: PathBuf,
        /// JSON Lines file of brand entries.
        file: PathBuf,
    },
    /// Write every registered brand as JSON Lines (to stdout without --out).
    Export {
        #[arg(long, env = "KNOCKOFF_STORE", default_value = DEFAULT_STORE)]
        store: PathBuf,
        #[arg(long, env = "KNOCKOFF_OUT")]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init(args.log_format);
    let result = match args.command {
        Command::Import { store, model, file } => import(&store, &model, &file),
        Command::Export { store, out } => export(&store, out.as_deref()).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("knockoff-brands: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Imports `file`; `Ok(false)` when some lines were refused.
fn import(store: &Path, model: &Path, file: &Path) -> anyhow::Result<bool> {
    let model = Model::load(model).with_context(|| format!("loading model {}", model.display()))?;
    let rates = model.rates();
    let reader =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let read = read_entries(BufReader::new(reader), &|code| rates.rate(code).is_some())
        .with_context(|| format!("reading {}", file.display()))?;
    let store = Store::open(store)?;
    let valid: Vec<ValidEntry> = read.entries.iter().map(|(_, v)| v.clone()).collect();
    let outcomes = store.put_brands(&valid, &Actor::Import)?;
    let mut failures: Vec<LineError> = read.errors;
    let (mut created, mut replaced) = (0usize, 0usize);
    let mut out = std::io::stdout().lock();
    for ((line, _), outcome) in read.entries.iter().zip(outcomes) {
        match outcome {
            Ok(put) => match put.token {
                Some(token) => {
                    created += 1;
                    let shown = serde_json::json!({"name": put.brand.name, "token": token});
                    writeln!(out, "{shown}")?;
                }
                None => replaced += 1,
            },
            Err(e) => failures.push(LineError {
                line: *line,
                message: e.to_string(),
            }),
        }
    }
    out.flush()?;
    failures.sort_by_key(|f| f.line);
    for failure in &failures {
        eprintln!("{failure}");
    }
    eprintln!(
        "imported {} brands ({created} created, {replaced} replaced); {} lines failed",
        created + replaced,
        failures.len()
    );
    Ok(failures.is_empty())
}

fn export(store: &Path, out: Option<&Path>) -> anyhow::Result<()> {
    let brands = Store::open(store)?.brands()?;
    let count = brands.len();
    match out {
        Some(path) => {
            let mut bytes = Vec::new();
            write_entries(brands, &mut bytes)?;
            knockoff::fsutil::write_atomically(path, &bytes, ".knockoff-brands")
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => write_entries(brands, std::io::stdout().lock())?,
    }
    eprintln!("exported {count} brands");
    Ok(())
}
