//! The analyst's day through the real `knockoff-score`: draw an audit sample, fill its labels
//! (from the fixture's known labels), and get a report whose headline is the audit; bad
//! audit files are refused with their line.

mod common;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;

use serde_json::Value;

fn run(args: &[&str]) -> std::process::Output {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    common::run_knockoff_score(&args)
}

fn ok(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The fixture's labels by id.
fn known_labels() -> HashMap<String, String> {
    let mut reader = csv::Reader::from_path(common::fixture("tiny-listings.csv")).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[7].to_string())
        })
        .collect()
}

/// Draws `n` audit rows into `dir/audit.csv`.
fn draw(model: &Path, dir: &Path, n: &str, seed: &str) -> String {
    let fixture = common::fixture("tiny-listings.csv");
    let audit = dir.join("audit.csv");
    let scores = dir.join("scores.csv");
    let out = run(&[
        "--model",
        s(model),
        "--input",
        s(&fixture),
        "--output",
        s(&scores),
        "--audit-sample",
        n,
        "--audit-out",
        s(&audit),
        "--seed",
        seed,
    ]);
    ok(&out);
    std::fs::read_to_string(audit).unwrap()
}

/// Rewrites the audit file's label column with `label(id, line)`.
fn label_audit(text: &str, label: impl Fn(&str, usize) -> String) -> String {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let last = header.len() - 1;
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header).unwrap();
    for (i, r) in reader.records().enumerate() {
        let r = r.unwrap();
        let mut cells: Vec<String> = r.iter().map(str::to_string).collect();
        cells[last] = label(&cells[0], i + 2);
        writer.write_record(&cells).unwrap();
    }
    String::from_utf8(writer.into_inner().unwrap()).unwrap()
}

fn report_with(model: &Path, dir: &Path, audit_text: &str) -> std::process::Output {
    let fixture = common::fixture("tiny-listings.csv");
    let audit = dir.join("labelled.csv");
    std::fs::write(&audit, audit_text).unwrap();
    run(&[
        "--model",
        s(model),
        "--input",
        s(&fixture),
        "--output",
        s(&dir.join("scores.csv")),
        "--audit-labels",
        s(&audit),
        "--report",
        s(&dir.join("r.json")),
    ])
}

#[test]
fn sample_label_report_makes_the_audit_the_headline() {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let text = draw(model.path(), dir.path(), "60", "7");
    assert_eq!(
        text,
        draw(model.path(), dir.path(), "60", "7"),
        "same seed, same draw"
    );
    let header = text.lines().next().unwrap();
    assert_eq!(
        header,
        "id,title,description,price,currency,brand,category,probability,stratum,weight,label"
    );
    assert_eq!(text.lines().count(), 61);
    let truth = known_labels();
    let labelled = label_audit(&text, |id, _| truth[id].clone());
    let out = ok(&report_with(model.path(), dir.path(), &labelled));
    assert!(
        out.contains("audit: 60 labelled listings, 0 not labelled yet"),
        "{out}"
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    let headline = &json["overall"]["prevalence"];
    assert_eq!(headline["method"], "audit");
    assert_eq!(json["headline_method"], "audit");
    let share = truth.values().filter(|l| *l == "1").count() as f64 / truth.len() as f64;
    let (low, high) = (
        headline["ci_low"].as_f64().unwrap(),
        headline["ci_high"].as_f64().unwrap(),
    );
    assert!(low <= share && share <= high, "{share} not in {low}–{high}");
    assert_eq!(json["audit"]["labelled"], 60);
    assert!(json["audit"]["model_based"]["method"].is_string());
    assert!(json["overall"]["estimators"]["em"]["estimate"].is_f64());
}

#[test]
fn bad_audit_files_are_refused_with_their_line() {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let text = draw(model.path(), dir.path(), "40", "1");
    let truth = known_labels();
    let cases = [
        (
            label_audit(&text, |id, line| {
                if line == 5 {
                    "2".into()
                } else {
                    truth[id].clone()
                }
            }),
            ":5: field `label`",
        ),
        (text.replacen("\ntr-", "\nnot-there-", 1), ":2: field `id`"),
        (
            label_audit(&text, |_, _| String::new()),
            "0 of 40 audit rows are labelled (40 empty)",
        ),
    ];
    for (bad, expected) in cases {
        let out = report_with(model.path(), dir.path(), &bad);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(expected),
            "{expected}: {stderr}"
        );
    }
    let mut lines: Vec<&str> = text.lines().collect();
    let again = lines[1];
    lines.push(again);
    let out = report_with(model.path(), dir.path(), &(lines.join("\n") + "\n"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(":42: field `id`") && stderr.contains("also on line 2"),
        "{stderr}"
    );
    // A sample without its output file, and an empty sample, are refused by the flags.
    let base = ["--input", "x.csv", "--output", "y.csv", "--audit-sample"];
    for extra in [&["5"][..], &["0", "--audit-out", "a.csv"]] {
        let out = run(&[&base[..], extra].concat());
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("--audit-"));
    }
}

/// The `id`, `stratum` and `weight` cells of an audit file, row by row.
fn design_columns(text: &str) -> Vec<(String, String, String)> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (id, stratum, weight) = (at("id"), at("stratum"), at("weight"));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[id].to_string(),
                r[stratum].to_string(),
                r[weight].to_string(),
            )
        })
        .collect()
}

#[test]
fn parquet_input_and_scores_give_the_audit_of_the_same_rows_as_csv() {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let from_csv = draw(model.path(), dir.path(), "60", "7");
    let input = dir.path().join("listings.parquet");
    common::parquet::csv_to_parquet(&common::fixture("tiny-listings.csv"), &input).unwrap();
    let scores = dir.path().join("scores.parquet");
    let audit = dir.path().join("audit-parquet.csv");
    let base = [
        "--model",
        s(model.path()),
        "--input",
        s(&input),
        "--output",
        s(&scores),
    ];
    let sample = [
        "--audit-sample",
        "60",
        "--audit-out",
        s(&audit),
        "--seed",
        "7",
    ];
    ok(&run(&[&base[..], &sample[..]].concat()));
    let from_parquet = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(design_columns(&from_parquet), design_columns(&from_csv));
    // Every input column is carried over from Parquet too.
    assert_eq!(
        from_parquet.lines().next().unwrap(),
        "id,title,description,price,currency,brand,category,probability,stratum,weight,label"
    );
    let truth = known_labels();
    let labelled = dir.path().join("labelled-parquet.csv");
    std::fs::write(
        &labelled,
        label_audit(&from_parquet, |id, _| truth[id].clone()),
    )
    .unwrap();
    let report = dir.path().join("r-parquet.json");
    let labels = ["--audit-labels", s(&labelled), "--report", s(&report)];
    ok(&run(&[&base[..], &labels[..]].concat()));
    ok(&report_with(
        model.path(),
        dir.path(),
        &label_audit(&from_csv, |id, _| truth[id].clone()),
    ));
    let headline = |path: &Path| -> Value {
        let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        json["overall"]["prevalence"].clone()
    };
    assert_eq!(headline(&report)["method"], "audit");
    assert_eq!(headline(&report), headline(&dir.path().join("r.json")));
}
