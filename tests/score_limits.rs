//! `knockoff-score` applies the same field limits as the server, because both validate
//! through `RawListing::validate`: a row whose id is too long fails with an error naming
//! `id`, keeps its place in the output, and every other row is still scored.

mod common;

use knockoff::data::listing::MAX_ID_CHARS;
use std::ffi::OsStr;

#[test]
fn an_overlong_id_fails_its_row_and_the_rest_score() {
    let model = common::tiny_model_dir();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ids.csv");
    let long_id = "x".repeat(MAX_ID_CHARS + 1);
    let fitting_id = "y".repeat(MAX_ID_CHARS);
    let rows = [
        "id,title,price,currency".to_string(),
        "ok-1,Nike Air Max 90 white,120.00,USD".to_string(),
        format!("{long_id},Rolex Submariner Date,9000.00,USD"),
        format!("{fitting_id},harbortek work gloves 3 pairs,15.83,EUR"),
    ];
    std::fs::write(&input, rows.join("\n") + "\n").unwrap();
    let output_csv = dir.path().join("scored.csv");
    let output = common::run_knockoff_score(&[
        OsStr::new("--model"),
        model.path().as_os_str(),
        OsStr::new("--input"),
        input.as_os_str(),
        OsStr::new("--output"),
        output_csv.as_os_str(),
    ]);
    assert!(
        output.status.success(),
        "knockoff-score failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut reader = csv::Reader::from_path(&output_csv).unwrap();
    let scored: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    const ERROR: usize = knockoff::batch::SCORES_COLUMNS.len() - 1;
    assert_eq!(scored.len(), 3, "one output row per input row");
    for (row, id) in [(&scored[0], "ok-1"), (&scored[2], fitting_id.as_str())] {
        assert_eq!(&row[0], id);
        assert!(row[1].parse::<f32>().is_ok(), "scored: {row:?}");
        assert!(row[ERROR].is_empty(), "no error: {row:?}");
    }
    let failed = &scored[1];
    assert!(failed[1].is_empty() && failed[2].is_empty(), "{failed:?}");
    let expected = format!(
        "{}:3: field `id`: is {} characters long; the limit is {MAX_ID_CHARS}",
        input.display(),
        MAX_ID_CHARS + 1
    );
    assert_eq!(&failed[ERROR], expected);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("scored 2 of 3 rows"), "{stdout}");
}
