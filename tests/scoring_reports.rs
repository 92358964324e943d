//! `knockoff-score` end to end, through the real binary and the tiny test model: the JSON
//! report's agreed shape, unlabelled input, bad rows, a bad report path and an empty file.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

/// Rows in `tests/fixtures/tiny-listings.csv` (not counting the header).
const FIXTURE_ROWS: usize = 300;

fn run_score(args: &[&str]) -> Output {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    common::run_knockoff_score(&args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "knockoff-score failed ({})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Scores `input` with the tiny model into `dir`, writing `report_name` there; returns the
/// process output and the report path.
fn score_with_report(
    model: &Path,
    input: &Path,
    dir: &Path,
    report_name: &str,
    extra: &[&str],
) -> (Output, PathBuf) {
    let output_csv = dir.join("scored.csv");
    let report = dir.join(report_name);
    let mut args = vec![
        "--model",
        path_str(model),
        "--input",
        path_str(input),
        "--output",
        path_str(&output_csv),
        "--report",
        path_str(&report),
    ];
    args.extend_from_slice(extra);
    let output = run_score(&args);
    (output, report)
}

fn read_json(path: &Path) -> Value {
    let contents =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_prevalence_shape(prevalence: &Value, context: &str) {
    let object = prevalence
        .as_object()
        .unwrap_or_else(|| panic!("{context}: prevalence is not an object: {prevalence}"));
    for key in ["estimate", "ci_low", "ci_high"] {
        let x = object[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{context}: {key} is not a number: {prevalence}"));
        assert!((0.0..=1.0).contains(&x), "{context}: {key} = {x}");
    }
    let (low, estimate, high) = (
        object["ci_low"].as_f64().unwrap(),
        object["estimate"].as_f64().unwrap(),
        object["ci_high"].as_f64().unwrap(),
    );
    assert!(
        low <= estimate && estimate <= high,
        "{context}: interval does not contain its estimate: {prevalence}"
    );
    let method = object["method"]
        .as_str()
        .unwrap_or_else(|| panic!("{context}: method is not a string: {prevalence}"));
    assert!(
        ["cc", "pcc", "acc", "pacc", "em"].contains(&method),
        "{context}: unknown method {method}"
    );
}

/// Checks the agreed top-level shape and returns the groups array.
fn assert_report_shape(report: &Value, listings: usize) -> &[Value] {
    let overall = &report["overall"];
    assert_eq!(overall["listings"], listings, "overall: {overall}");
    let block = overall["flagged"]["block"]
        .as_u64()
        .unwrap_or_else(|| panic!("flagged.block missing: {overall}"));
    let review = overall["flagged"]["review"]
        .as_u64()
        .unwrap_or_else(|| panic!("flagged.review missing: {overall}"));
    assert!(block + review <= listings as u64, "{overall}");
    assert_prevalence_shape(&overall["prevalence"], "overall");
    let groups = report["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("groups is not an array: {report}"));
    for group in groups {
        let by = group["by"].as_str().unwrap_or_else(|| panic!("{group}"));
        assert!(["brand", "category", "currency"].contains(&by), "{group}");
        assert!(group["value"].is_string(), "{group}");
        assert!(group["listings"].as_u64().is_some_and(|n| n > 0), "{group}");
        assert!(
            group.get("prevalence").is_some(),
            "prevalence key missing: {group}"
        );
    }
    // Each grouping partitions the sample.
    for by in ["brand", "category", "currency"] {
        let total: u64 = groups
            .iter()
            .filter(|g| g["by"] == by)
            .map(|g| g["listings"].as_u64().unwrap())
            .sum();
        assert_eq!(total, listings as u64, "listings by {by}");
    }
    groups
}

#[test]
fn json_report_has_the_agreed_shape() {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let input = common::fixture("tiny-listings.csv");
    // The fixture's currencies: CNY 137, USD 110, EUR 36, GBP 17 listings, so at 100 rows
    // some groups get an estimate and the others are too small.
    let (output, report) = score_with_report(
        model.path(),
        &input,
        dir.path(),
        "r.json",
        &["--min-group-rows", "100"],
    );
    assert_success(&output);
    let json = read_json(&report);
    let groups = assert_report_shape(&json, FIXTURE_ROWS);
    assert_eq!(json["min_group_rows"], 100);
    assert!(json["overall"]["true_share"].is_f64(), "labelled fixture");

    let currency = |code: &str| {
        groups
            .iter()
            .find(|g| g["by"] == "currency" && g["value"] == code)
            .unwrap_or_else(|| panic!("no currency group {code}"))
    };
    for code in ["CNY", "USD"] {
        let group = currency(code);
        assert!(group["listings"].as_u64().unwrap() >= 100, "{group}");
        assert_prevalence_shape(&group["prevalence"], code);
        assert_eq!(group["too_small"], false, "{group}");
    }
    for code in ["EUR", "GBP"] {
        let group = currency(code);
        assert!(group["listings"].as_u64().unwrap() < 100, "{group}");
        assert!(group["prevalence"].is_null(), "{group}");
        assert_eq!(group["too_small"], true, "{group}");
    }
    for group in groups {
        let small = group["listings"].as_u64().unwrap() < 100;
        assert_eq!(group["prevalence"].is_null(), small, "{group}");
    }
    // stdout carries the same figures as a table.
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("more groups have fewer than 100 listings: no estimate"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("wrote {}", report.display())),
        "{stdout}"
    );

    // Forcing each extreme: every group estimated, then none.
    let (output, report) = score_with_report(
        model.path(),
        &input,
        dir.path(),
        "all.json",
        &["--min-group-rows", "1"],
    );
    assert_success(&output);
    let json = read_json(&report);
    let groups = assert_report_shape(&json, FIXTURE_ROWS);
    assert!(!groups.is_empty());
    for group in groups {
        assert_prevalence_shape(&group["prevalence"], &group.to_string());
    }
    let (output, report) = score_with_report(
        model.path(),
        &input,
        dir.path(),
        "none.json",
        &["--min-group-rows", "1000"],
    );
    assert_success(&output);
    let json = read_json(&report);
    let groups = assert_report_shape(&json, FIXTURE_ROWS);
    assert!(
        groups.iter().all(|g| g["prevalence"].is_null()),
        "{groups:?}"
    );
}

/// The fixture without its `label` column, as CSV.
fn write_unlabelled_copy(dir: &Path) -> PathBuf {
    let mut reader = csv::Reader::from_path(common::fixture("tiny-listings.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let label = headers
        .iter()
        .position(|h| h == "label")
        .expect("fixture has a label column");
    let path = dir.join("unlabelled.csv");
    let mut writer = csv::Writer::from_path(&path).unwrap();
    let keep = |record: &csv::StringRecord| -> Vec<String> {
        record
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != label)
            .map(|(_, v)| v.to_string())
            .collect()
    };
    writer.write_record(keep(&headers)).unwrap();
    let mut rows = 0;
    for record in reader.records() {
        writer.write_record(keep(&record.unwrap())).unwrap();
        rows += 1;
    }
    writer.flush().unwrap();
    assert_eq!(rows, FIXTURE_ROWS);
    path
}

#[test]
fn unlabelled_file_gets_prevalence_but_no_evaluation() {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let input = write_unlabelled_copy(dir.path());

    let (output, report) = score_with_report(model.path(), &input, dir.path(), "r.json", &[]);
    assert_success(&output);
    let json = read_json(&report);
    assert_report_shape(&json, FIXTURE_ROWS);
    assert!(
        json["overall"].get("true_share").is_none(),
        "{}",
        json["overall"]
    );
    let stdout = text(&output.stdout);
    assert!(stdout.contains("Estimated "), "{stdout}");
    assert!(
        !stdout.contains("ROC"),
        "no evaluation metrics without labels:\n{stdout}"
    );

    let (output, report) = score_with_report(model.path(), &input, dir.path(), "r.html", &[]);
    assert_success(&output);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("id=\"headline\""), "headline missing");
    assert!(html.contains("id=\"chart-scores\""), "score chart missing");
    for absent in ["chart-roc", "chart-pr", "chart-reliability", "evaluation"] {
        assert!(
            !html.contains(&format!("id=\"{absent}\"")),
            "{absent} shown for an unlabelled file"
        );
    }
}

#[test]
fn bad_rows_keep_their_place_and_say_what_is_wrong() {
    const ERROR: usize = knockoff::batch::SCORES_COLUMNS.len() - 1;
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.csv");
    // Line 1 is the header; data rows start on line 2. The stray comma in line 6 is the
    // usual form of broken quoting (a title with a comma that was never quoted); line 8
    // opens a quote that is never closed, swallowing the rest of the file.
    let lines = [
        "id,title,description,price,currency,brand,category,label",
        "ok-1,Nike Air Max 90 white,Brand new in box,120.00,USD,Nike,sneakers,0",
        "bad-price,Gucci belt black,,-5.00,EUR,Gucci,accessories,1",
        "bad-currency,Rolex Submariner,,9000.00,XYZ,Rolex,watches,1",
        "bad-title,,no title at all,10.00,USD,Acme,tools,0",
        "bad-quote,Nike shoes, size 42,desc,80.00,USD,Nike,sneakers,0",
        "ok-2,harbortek work gloves 3 pairs grey,,15.83,EUR,harbortek,tools,0",
        "bad-eof,\"Louis Vuitton bag,never closed,30.00,USD,Louis Vuitton,bags,1",
    ];
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let output_csv = dir.path().join("scored.csv");
    let output = run_score(&[
        "--model",
        path_str(model.path()),
        "--input",
        path_str(&input),
        "--output",
        path_str(&output_csv),
    ]);
    assert_success(&output);

    let mut reader = csv::Reader::from_path(&output_csv).unwrap();
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        knockoff::batch::SCORES_COLUMNS
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(
        rows.len(),
        lines.len() - 1,
        "one output row per input row: {rows:?}"
    );

    // (expected id, line, field named in the error or None for a scored row)
    let file = input.display().to_string();
    let expected: [(&str, u64, Option<&str>); 7] = [
        ("ok-1", 2, None),
        ("bad-price", 3, Some("field `price`")),
        ("bad-currency", 4, Some("field `currency`")),
        ("bad-title", 5, Some("field `title`")),
        ("", 6, Some("fields")),
        ("ok-2", 7, None),
        ("", 8, Some("fields")),
    ];
    for (row, (id, line, problem)) in rows.iter().zip(expected) {
        let context = format!("{row:?}");
        assert_eq!(&row[0], id, "{context}");
        match problem {
            None => {
                let p: f32 = row[1].parse().unwrap_or_else(|_| panic!("{context}"));
                assert!((0.0..=1.0).contains(&p), "{context}");
                assert!(["allow", "review", "block"].contains(&&row[2]), "{context}");
                assert!(row[ERROR].is_empty(), "{context}");
            }
            Some(what) => {
                assert!(row[1].is_empty() && row[2].is_empty(), "{context}");
                let error = &row[ERROR];
                assert!(error.contains(&format!("{file}:{line}:")), "{context}");
                assert!(error.contains(what), "{context}");
            }
        }
    }
    assert!(
        rows[2][ERROR].contains("XYZ"),
        "unknown currency named: {:?}",
        rows[2]
    );
    assert!(rows[1][ERROR].contains("negative"), "{:?}", rows[1]);

    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("scored 2 of 7 rows") && stdout.contains("5 rows could not be scored"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{file}:3: field `price`")),
        "{stdout}"
    );
}

#[test]
fn unknown_report_extension_fails_before_writing_anything() {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let output_csv = dir.path().join("scored.csv");
    let report = dir.path().join("r.pdf");
    let output = run_score(&[
        "--model",
        path_str(model.path()),
        "--input",
        path_str(&common::fixture("tiny-listings.csv")),
        "--output",
        path_str(&output_csv),
        "--report",
        path_str(&report),
    ]);
    assert!(!output.status.success(), "r.pdf was accepted");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(".pdf") && stderr.contains("not supported") && stderr.contains(".html"),
        "unclear message:\n{stderr}"
    );
    assert!(
        !output_csv.exists(),
        "output written despite the bad report path"
    );
    assert!(!report.exists());
    assert!(text(&output.stdout).is_empty(), "{}", text(&output.stdout));
}

#[test]
fn header_only_file_reports_zero_listings() {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("empty.csv");
    std::fs::write(
        &input,
        "id,title,description,price,currency,brand,category,label\n",
    )
    .unwrap();

    let (output, report) = score_with_report(model.path(), &input, dir.path(), "r.json", &[]);
    assert_success(&output);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("scored 0 of 0 rows"), "{stdout}");
    assert!(stdout.contains("No listings were scored"), "{stdout}");
    let json = read_json(&report);
    assert_eq!(json["overall"]["listings"], 0);
    assert!(json["overall"]["prevalence"].is_null(), "{json}");
    assert_eq!(json["groups"].as_array().map(Vec::len), Some(0), "{json}");
    let scored = std::fs::read_to_string(dir.path().join("scored.csv")).unwrap();
    assert_eq!(scored.trim(), knockoff::batch::SCORES_COLUMNS.join(","));

    // The HTML page renders too (charts over no data must not panic).
    let (output, report) = score_with_report(model.path(), &input, dir.path(), "r.html", &[]);
    assert_success(&output);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("No listings were scored"), "headline missing");
}

#[test]
fn scores_name_the_brand_and_follow_the_expected_prevalence() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("listings.csv");
    std::fs::write(
        &input,
        "id,title,price,currency,brand,category\n\
         f,R0LEX Submariner 1:1 automatic,60,USD,,\n\
         c,silicone case for Apple iPhone 15,4,USD,,\n\
         t,Wooden stacking rings,9,GBP,Little Acorn,Baby\n",
    )
    .unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default");
    let mut decisions = Vec::new();
    for prevalence in [None, Some("0.02")] {
        let output_csv = dir.path().join("scores.csv");
        let mut args = vec![
            "--model",
            path_str(&model),
            "--input",
            path_str(&input),
            "--output",
            path_str(&output_csv),
        ];
        if let Some(p) = prevalence {
            args.extend(["--expected-prevalence", p]);
        }
        assert_success(&run_score(&args));
        let mut reader = csv::Reader::from_path(&output_csv).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let cells = |i: usize| -> Vec<&str> { rows[i].iter().skip(3).take(4).collect() };
        assert_eq!(cells(0), ["Rolex", "title", "leet", "is"]);
        assert_eq!(cells(1)[3], "for");
        assert_eq!(cells(2), ["", "", "", ""]);
        let probability = |i: usize| rows[i][1].parse::<f64>().unwrap();
        decisions.push((probability(0), rows[0][2].to_string()));
    }
    assert!(decisions[1].0 < decisions[0].0, "{decisions:?}");

    let output = run_score(&[
        "--model",
        path_str(&model),
        "--input",
        path_str(&input),
        "--output",
        path_str(&dir.path().join("x.csv")),
        "--expected-prevalence",
        "1.5",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("expected-prevalence"),
        "{}",
        text(&output.stderr)
    );
}
