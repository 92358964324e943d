//! Learning from reviews through `knockoff::train` and files: reviewed listings join the
//! training rows (a review replaces the label of its id), are counted in the metrics, and
//! move the model towards the reviewers' decisions.

mod common;

use indicatif::ProgressBar;
use knockoff::decision::Decision;
use knockoff::model::Model;
use knockoff::train::{train, TrainOptions};

#[test]
fn reviews_are_counted_and_learned() {
    let dir = tempfile::tempdir().unwrap();
    let mut reader = csv::Reader::from_path(common::fixture("tiny-listings.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    // Reviewers overturn the labels of 6 training listings and add 2 new ones.
    let mut lines = Vec::new();
    for (i, r) in rows.iter().take(8).enumerate() {
        let flipped = if &r[7] == "1" {
            "genuine"
        } else {
            "counterfeit"
        };
        let id = if i < 6 {
            r[0].to_string()
        } else {
            format!("new-{i}")
        };
        lines.push(serde_json::json!({
            "id": id, "title": &r[1], "description": &r[2], "price": r[3].parse::<f64>().unwrap(),
            "currency": &r[4], "brand": &r[5], "category": &r[6], "label": flipped,
            "reviewer": "kim", "reviewed_at": "2026-01-02T10:00:00Z", "model_version": "v1",
            "probability": 0.5, "note": null,
        }).to_string());
    }
    let path = dir.path().join("reviews.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let options = TrainOptions {
        reviews: Some(path.clone()),
        review_weight: 10,
        max_epochs: 4,
        ..common::tiny_options()
    };
    let outcome = train(&options, &ProgressBar::hidden()).unwrap();
    let used = outcome.metrics.reviews.unwrap();
    assert_eq!(
        (
            used.used,
            used.added,
            used.replaced,
            used.weight,
            used.verdicts
        ),
        (8, 2, 6, 10, 8)
    );
    let json = serde_json::to_value(&outcome.metrics).unwrap();
    assert_eq!(json["reviews"]["replaced"], 6);

    // The model keeps the reviewers' verdicts: saved, loaded, the reviewed listings are
    // decided as their reviewers did, a verdict first among the reasons; an edited listing
    // is judged by the model again.
    let mut model = outcome.model;
    let model_dir = dir.path().join("model");
    model.save(&model_dir, &Default::default()).unwrap();
    let model = Model::load(&model_dir).unwrap();
    assert_eq!(model.config.reviewed.len(), 8);
    let reviews =
        knockoff::data::reviews::read_reviews(&path, model.rates(), model.limits()).unwrap();
    let listings: Vec<_> = reviews.iter().map(|r| r.listing.clone()).collect();
    let assessed = model.assess(&listings, 3).unwrap();
    for (review, assessment) in reviews.iter().zip(&assessed) {
        let expected = if review.counterfeit {
            Decision::Block
        } else {
            Decision::Allow
        };
        assert_eq!(assessment.score.decision, expected, "{:?}", review.listing);
        let label = if review.counterfeit {
            "counterfeit"
        } else {
            "genuine"
        };
        assert_eq!(
            assessment.reasons[0].text,
            format!("a reviewer decided this same listing {label} on 2026-01-02")
        );
    }
    let scores = model.score(&listings).unwrap();
    assert_eq!(
        scores.iter().map(|s| s.decision).collect::<Vec<_>>(),
        assessed
            .iter()
            .map(|a| a.score.decision)
            .collect::<Vec<_>>(),
        "scoring with and without reasons decides alike"
    );
    let mut edited = listings[0].clone();
    edited.title.push_str(" (edited)");
    let again = model.assess(&[edited], 3).unwrap();
    assert!(again[0]
        .reasons
        .iter()
        .all(|r| !r.text.starts_with("a reviewer decided")));

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, format!("{}\n{{\"id\":\"x\"}}\n", lines[0])).unwrap();
    let Err(err) = train(
        &TrainOptions {
            reviews: Some(bad),
            ..common::tiny_options()
        },
        &ProgressBar::hidden(),
    ) else {
        panic!("a bad review line must be refused");
    };
    let err = err.to_string();
    assert!(err.contains("bad.jsonl:2: "), "{err}");
}
