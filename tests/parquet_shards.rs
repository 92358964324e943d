//! Parquet in and out, and runs that merge, through the real `knockoff-score` binary and the
//! tiny test model: Parquet input scores like CSV input, Parquet output is typed, bad Parquet
//! rows are reported by row number, and shards (three CSV, six Parquet) scored with
//! `--summary-out` and merged give the counts, headline and labelled evaluation of one run
//! over all rows; parts of another model are refused.

mod common;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float32Type, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde_json::Value;
use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

fn run(args: &[&OsStr]) -> Output {
    common::run_knockoff_score(args)
}

fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "knockoff-score failed ({})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn score(model: &Path, input: &Path, output: &Path, extra: &[&OsStr]) -> Output {
    let mut args: Vec<&OsStr> = vec![
        "--model".as_ref(),
        model.as_os_str(),
        "--input".as_ref(),
        input.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// `(id, probability)` of every row of a scores CSV.
fn csv_scores(path: &Path) -> Vec<(String, Option<f32>)> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].parse().ok())
        })
        .collect()
}

/// `(id, probability)` of every row of a scores Parquet file, checking its column types.
fn parquet_scores(path: &Path) -> Vec<(String, Option<f32>)> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, knockoff::batch::SCORES_COLUMNS);
    assert_eq!(schema.field(1).data_type(), &DataType::Float32);
    assert_eq!(schema.field(2).data_type(), &DataType::Utf8);
    let mut out = Vec::new();
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        let ids = batch.column(0).as_string::<i32>();
        let probs = batch.column(1).as_primitive::<Float32Type>();
        let decisions = batch.column(2).as_string::<i32>();
        for i in 0..batch.num_rows() {
            assert_eq!(probs.is_valid(i), decisions.is_valid(i));
            out.push((
                ids.value(i).to_string(),
                probs.is_valid(i).then(|| probs.value(i)),
            ));
        }
    }
    out
}

#[test]
fn parquet_input_scores_like_csv_and_parquet_output_is_typed() {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let csv_in = common::fixture("tiny-listings.csv");
    let parquet_in = dir.path().join("listings.parquet");
    let rows = common::parquet::csv_to_parquet(&csv_in, &parquet_in).unwrap();
    assert_eq!(rows, 300);

    let from_csv = dir.path().join("from-csv.csv");
    let from_parquet = dir.path().join("from-parquet.parquet");
    ok(score(model.path(), &csv_in, &from_csv, &[]));
    let out = ok(score(model.path(), &parquet_in, &from_parquet, &[]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("scored 300 of 300 rows"));

    let a = csv_scores(&from_csv);
    let b = parquet_scores(&from_parquet);
    assert_eq!(a.len(), 300);
    assert_eq!(a.len(), b.len());
    for ((id_a, p_a), (id_b, p_b)) in a.iter().zip(&b) {
        assert_eq!(id_a, id_b);
        let (p_a, p_b) = (p_a.unwrap(), p_b.unwrap());
        // The CSV carries six decimals; Parquet the Float32 itself.
        assert!((p_a - p_b).abs() <= 6e-7, "{id_a}: {p_a} vs {p_b}");
    }
}

#[test]
fn bad_parquet_rows_are_reported_by_row_number() {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("bad.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("title", DataType::Utf8, true),
        Field::new("price", DataType::Utf8, true),
        Field::new("currency", DataType::Utf8, true),
    ]));
    let column = |values: [Option<&str>; 3]| Arc::new(StringArray::from(values.to_vec()));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            column([Some("a"), Some("b"), Some("c")]),
            column([Some("Rolex watch"), None, Some("mug")]),
            column([Some("10"), Some("5"), Some("-3")]),
            column([Some("USD"), Some("USD"), Some("USD")]),
        ],
    )
    .unwrap();
    let mut writer = ArrowWriter::try_new(File::create(&input).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let output = dir.path().join("scores.csv");
    let out = ok(score(model.path(), &input, &output, &[]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("scored 1 of 3 rows"), "{stdout}");
    let mut reader = csv::Reader::from_path(&output).unwrap();
    let errors: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[7].to_string())
        .collect();
    assert_eq!(errors[0], "");
    assert!(
        errors[1].contains("bad.parquet:2:") && errors[1].contains("`title`"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("bad.parquet:3:") && errors[2].contains("`price`"),
        "{}",
        errors[2]
    );

    // A file without a title column is refused as a whole, naming the column.
    let no_title = dir.path().join("no-title.parquet");
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec!["a"]))]).unwrap();
    let mut writer = ArrowWriter::try_new(File::create(&no_title).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let out = score(model.path(), &no_title, &output, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing required column `title`"));
}

/// Splits the fixture into `n` CSV shards of consecutive rows.
fn shards(dir: &Path, n: usize) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(common::fixture("tiny-listings.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let size = records.len().div_ceil(n);
    records
        .chunks(size)
        .enumerate()
        .map(|(i, chunk)| {
            let path = dir.join(format!("shard-{i}.csv"));
            let mut w = csv::Writer::from_path(&path).unwrap();
            w.write_record(&header).unwrap();
            for r in chunk {
                w.write_record(r).unwrap();
            }
            w.flush().unwrap();
            path
        })
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Group counts of a JSON report, as `(by, value, listings, block, review)`.
fn group_counts(report: &Value) -> Vec<(String, String, u64, u64, u64)> {
    let mut groups: Vec<_> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["by"].as_str().unwrap().to_string(),
                g["value"].as_str().unwrap().to_string(),
                g["listings"].as_u64().unwrap(),
                g["flagged"]["block"].as_u64().unwrap(),
                g["flagged"]["review"].as_u64().unwrap(),
            )
        })
        .collect();
    groups.sort();
    groups
}

/// `--merge parts --report all.json --summary-out merged.json`: (report, merged summary,
/// stdout).
fn merge(dir: &Path, parts: &[PathBuf]) -> (Value, Value, String) {
    let report = dir.join("all.json");
    let merged_summary = dir.join("merged-summary.json");
    let mut args: Vec<&OsStr> = vec!["--merge".as_ref()];
    args.extend(parts.iter().map(|p| p.as_os_str()));
    args.extend([
        "--report".as_ref(),
        report.as_os_str(),
        "--summary-out".as_ref(),
        merged_summary.as_os_str(),
    ]);
    let out = ok(run(&args));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (read_json(&report), read_json(&merged_summary), stdout)
}

/// Scores each shard with `--summary-out`; returns the summary files.
fn score_shards(model: &Path, dir: &Path, shards: &[PathBuf]) -> Vec<PathBuf> {
    let mut parts = Vec::new();
    for (i, shard) in shards.iter().enumerate() {
        let part = dir.join(format!("part-{i}.json"));
        let scores = dir.join(format!("scores-{i}.parquet"));
        ok(score(
            model,
            shard,
            &scores,
            &["--summary-out".as_ref(), part.as_os_str()],
        ));
        let summary = read_json(&part);
        assert_eq!(summary["model_name"], common::TINY_MODEL_NAME);
        assert_eq!(
            summary["format_version"],
            knockoff::batch::summary::SUMMARY_FORMAT_VERSION
        );
        parts.push(part);
    }
    parts
}

/// One run over all rows: (report, summary, stdout).
fn score_whole(model: &Path, dir: &Path, input: &Path) -> (Value, Value, String) {
    let whole = dir.join("whole.json");
    let whole_summary = dir.join("whole-summary.json");
    let out = ok(score(
        model,
        input,
        &dir.join("whole.csv"),
        &[
            "--report".as_ref(),
            whole.as_os_str(),
            "--summary-out".as_ref(),
            whole_summary.as_os_str(),
        ],
    ));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (read_json(&whole), read_json(&whole_summary), stdout)
}

fn close(a: &Value, b: &Value, tolerance: f64, what: &str) {
    let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
    assert!((x - y).abs() <= tolerance, "{what}: {x} vs {y}");
}

/// Probabilities scored in batches of another size may differ in the last bit of an `f32`,
/// so figures computed from them agree to this, not bit for bit.
const FLOAT_NOISE: f64 = 1e-6;

/// The merged report and summary say what the single run's say: the same counts, the same
/// headline (0.01 points) and the same labelled evaluation (figures and curves).
fn assert_same_report(single: (&Value, &Value), merged: (&Value, &Value)) {
    let ((a, sa), (b, sb)) = (single, merged);
    let (oa, ob) = (&a["overall"], &b["overall"]);
    assert_eq!(oa["listings"], 300);
    for key in ["listings", "flagged", "labeled"] {
        assert_eq!(oa[key], ob[key], "overall.{key}");
    }
    for key in ["estimate", "ci_low", "ci_high"] {
        // 0.01 percentage points.
        close(&oa["prevalence"][key], &ob["prevalence"][key], 1e-4, key);
    }
    assert_eq!(oa["prevalence"]["method"], ob["prevalence"]["method"]);
    assert_eq!(group_counts(a), group_counts(b));
    for key in ["rows", "scored", "errors", "scores"] {
        assert_eq!(sa[key], sb[key], "{key}");
    }

    let (ea, eb) = (&a["evaluation"], &b["evaluation"]);
    assert_eq!(ea["labelled_listings"], 300, "{ea}");
    for key in ["labelled_listings", "counterfeit"] {
        assert_eq!(ea[key], eb[key], "evaluation.{key}");
    }
    for key in [
        "roc_auc",
        "pr_auc",
        "recall_at_95_precision",
        "expected_calibration_error",
        "brier_score",
    ] {
        close(&ea[key], &eb[key], FLOAT_NOISE, key);
    }
    for chart in ["roc", "pr", "reliability"] {
        let (ca, cb) = (ea[chart].as_array().unwrap(), eb[chart].as_array().unwrap());
        assert!(ca.len() >= 3, "{chart}: {ca:?}");
        assert_eq!(ca.len(), cb.len(), "{chart}");
        for (pa, pb) in ca.iter().zip(cb) {
            for (key, value) in pa.as_object().unwrap() {
                match value.as_f64() {
                    Some(_) => close(value, &pb[key], FLOAT_NOISE, &format!("{chart}.{key}")),
                    None => assert_eq!(value, &pb[key], "{chart}.{key}"),
                }
            }
        }
    }
}

/// The figure after `name` in the metrics table a labelled run prints (row by row).
fn printed_metric(stdout: &str, name: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in\n{stdout}"));
    line.split_whitespace().last().unwrap().parse().unwrap()
}

#[test]
fn merged_shards_give_the_report_of_one_run() {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let (whole, whole_summary, whole_out) = score_whole(
        model.path(),
        dir.path(),
        &common::fixture("tiny-listings.csv"),
    );
    let parts = score_shards(model.path(), dir.path(), &shards(dir.path(), 3));
    let (merged, merged_summary, stdout) = merge(dir.path(), &parts);
    assert!(stdout.contains("merged 3 summaries"), "{stdout}");
    assert!(stdout.contains("300 of 300 rows scored"), "{stdout}");
    assert_same_report((&whole, &whole_summary), (&merged, &merged_summary));
    assert_eq!(merged_summary["inputs"].as_array().unwrap().len(), 3);

    // The report's binned evaluation agrees with the exact one the run prints; the tiny
    // model's 300 scores crowd into a narrow range, so bins hold ties and the documented
    // tolerance for such samples (a few thousandths, see knockoff::eval::binned) applies.
    // The merge prints the binned table.
    let tolerance = 0.005;
    let evaluation = &merged["evaluation"];
    for (printed, key) in [("ROC-AUC", "roc_auc"), ("PR-AUC", "pr_auc")] {
        let exact = printed_metric(&whole_out, printed);
        let binned = evaluation[key].as_f64().unwrap();
        assert!(
            (exact - binned).abs() <= tolerance,
            "{key}: {exact} vs {binned}"
        );
        assert!(
            (printed_metric(&stdout, printed) - binned).abs() <= 5e-5,
            "{stdout}"
        );
    }
    assert!(printed_metric(&whole_out, "ROC-AUC") > 0.6, "{whole_out}");

    // A part scored by another model is refused, naming the file.
    let other = common::tiny_model_dir_named("other", None);
    let foreign = dir.path().join("foreign.json");
    ok(score(
        other.path(),
        &shards(dir.path(), 3)[0],
        &dir.path().join("foreign.csv"),
        &["--summary-out".as_ref(), foreign.as_os_str()],
    ));
    let out = run(&[
        "--merge".as_ref(),
        parts[0].as_os_str(),
        foreign.as_os_str(),
        "--report".as_ref(),
        dir.path().join("mixed.json").as_os_str(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("foreign.json") && stderr.contains("model other"),
        "{stderr}"
    );
    assert!(!dir.path().join("mixed.json").exists());
}

#[test]
fn six_parquet_shards_merge_into_the_report_of_one_parquet_run() {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.parquet");
    let rows = common::parquet::csv_to_parquet(&common::fixture("tiny-listings.csv"), &all);
    assert_eq!(rows.unwrap(), 300);
    let (whole, whole_summary, _) = score_whole(model.path(), dir.path(), &all);

    let shards: Vec<PathBuf> = shards(dir.path(), 6)
        .iter()
        .enumerate()
        .map(|(i, csv)| {
            let parquet = dir.path().join(format!("shard-{i}.parquet"));
            assert_eq!(common::parquet::csv_to_parquet(csv, &parquet).unwrap(), 50);
            parquet
        })
        .collect();
    let parts = score_shards(model.path(), dir.path(), &shards);
    let (merged, merged_summary, stdout) = merge(dir.path(), &parts);
    assert!(stdout.contains("merged 6 summaries"), "{stdout}");
    assert!(stdout.contains("300 of 300 rows scored"), "{stdout}");
    assert_same_report((&whole, &whole_summary), (&merged, &merged_summary));
    let inputs = merged_summary["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 6);
    assert!(inputs
        .iter()
        .all(|i| i.as_str().unwrap().ends_with(".parquet")));
}
