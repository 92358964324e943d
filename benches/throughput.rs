//! Batch-scoring throughput: where the time goes (read, featurise, model) and listings/s
//! from file to file. Run: `cargo bench --bench throughput`.

// Featurisation makes many small allocations on every core: mimalloc keeps them cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use knockoff::data::reader::RowReader;
use knockoff::features::Features;
use knockoff::model::Model;
use rayon::prelude::*;
use std::path::Path;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    knockoff::threads::set_worker_threads(None);
    let model_dir = std::env::var("KNOCKOFF_MODEL").unwrap_or_else(|_| "models/default".into());
    let input = std::env::var("KNOCKOFF_BENCH_INPUT")
        .unwrap_or_else(|_| "training/data/listings-train.csv.gz".into());
    let model = Model::load(Path::new(&model_dir))?;
    let started = Instant::now();
    let raw: Vec<_> = RowReader::open(Path::new(&input))?.collect::<Result<Vec<_>, _>>()?;
    let read = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let listings: Vec<_> = raw
        .into_iter()
        .map(|r| {
            r.validate(&input, model.rates(), model.limits(), false)
                .map(|row| row.listing)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let validate = started.elapsed().as_secs_f64();
    let n = listings.len() as f64;

    let started = Instant::now();
    let features: Vec<Features> = listings
        .iter()
        .map(|l| model.featurizer.featurize(l))
        .collect();
    let featurize_1 = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let _: Vec<Features> = listings
        .par_iter()
        .map(|l| model.featurizer.featurize(l))
        .collect();
    let featurize_all = started.elapsed().as_secs_f64();
    let refs: Vec<&Features> = features.iter().collect();
    let started = Instant::now();
    for chunk in refs.chunks(512) {
        model.score_features(chunk)?;
    }
    let model_1 = started.elapsed().as_secs_f64();
    // A digest of every feature, so a faster featuriser can be checked to be the same one.
    let mut digest = xxhash_rust::xxh3::Xxh3::new();
    for f in &features {
        for id in &f.ids {
            digest.update(&id.to_le_bytes());
        }
        for d in &f.dense {
            digest.update(&d.to_bits().to_le_bytes());
        }
    }
    // The server's path: featurise with terms, then network and three reasons each.
    let sample = &listings[..listings.len().min(50_000)];
    let started = Instant::now();
    let prepared = model.prepare_all(sample, 3);
    let explain_prepare = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for chunk in prepared.chunks(512) {
        model.assess_prepared(chunk, &[3; 512])?;
    }
    let explain_model = started.elapsed().as_secs_f64();
    // One listing at a time on one thread, as a single-listing request is scored: the
    // compute floor of one `/v1/score` call, without HTTP, JSON or the queue.
    let started = Instant::now();
    for listing in sample {
        let one = [model.prepare(listing, 3)];
        std::hint::black_box(model.assess_prepared(&one, &[3])?);
    }
    let single_request = started.elapsed().as_secs_f64();
    let m = sample.len() as f64;
    let mean_ids = features.iter().map(|f| f.ids.len()).sum::<usize>() as f64 / n;
    println!(
        "rows {n}, mean ids {mean_ids:.0}, features digest {:016x}",
        digest.digest()
    );
    println!("read+parse   {:>9.0} rows/s (one thread)", n / read);
    println!("validate     {:>9.0} rows/s (one thread)", n / validate);
    println!(
        "featurize    {:>9.0} rows/s (one thread), {:.0} rows/s (all threads)",
        n / featurize_1,
        n / featurize_all
    );
    println!(
        "model        {:>9.0} rows/s (one thread, batches of 512)",
        n / model_1
    );
    println!(
        "with reasons {:>9.0} rows/s featurise with terms (all threads), {:.0} rows/s network + 3 reasons (one thread)",
        m / explain_prepare,
        m / explain_model
    );
    println!(
        "one by one   {:>9.0} rows/s featurise with terms + network + 3 reasons, one listing per call (one thread): {:.1} µs each",
        m / single_request,
        1e6 * single_request / m
    );
    let out = std::env::temp_dir().join("knockoff-throughput.csv");
    let started = Instant::now();
    let summary = knockoff::batch::score_file(
        &model,
        Path::new(&input),
        &out,
        &indicatif::ProgressBar::hidden(),
    )?;
    let file_to_file = started.elapsed().as_secs_f64();
    println!(
        "file→file    {:>9.0} rows/s ({} rows, all threads)",
        summary.rows as f64 / file_to_file,
        summary.rows
    );
    Ok(())
}
