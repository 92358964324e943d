use knockoff::data::reader::load_rows;
use knockoff::model::Model;
use knockoff::registry::{BrandEntry, RegisteredBrand};
use std::path::Path;

#[test]
#[ignore]
fn probe() {
    let model = Model::load(Path::new(
        &std::env::var("MODEL").unwrap_or("models/default".into()),
    ))
    .unwrap();
    let dir = std::env::var("REG_DIR").unwrap_or("/tmp/reg".into());
    let rows = load_rows(
        Path::new(&format!("{dir}/listings.csv")),
        model.rates(),
        model.limits(),
        true,
        0,
    )
    .unwrap()
    .rows;
    let line = std::fs::read_to_string(format!("{dir}/registration.jsonl")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    let name = v["name"].as_str().unwrap().to_string();
    let mut entry = v.clone();
    entry.as_object_mut().unwrap().remove("name");
    let entry: BrandEntry = serde_json::from_value(entry).unwrap();
    let listings: Vec<_> = rows.iter().map(|r| r.listing.clone()).collect();
    for registered in [false, true] {
        if registered {
            model.use_registry(&[RegisteredBrand {
                name: name.clone(),
                entry: entry.clone(),
                created_at: String::new(),
                updated_at: String::new(),
            }]);
        }
        let prepared = model.prepare_all(&listings, 3);
        let assessed = model
            .assess_prepared(&prepared, &vec![3; listings.len()])
            .unwrap();
        let mut counts = std::collections::BTreeMap::new();
        for ((row, a), p) in rows.iter().zip(&assessed).zip(&prepared) {
            *counts
                .entry((row.label.unwrap(), format!("{:?}", a.score.decision)))
                .or_insert(0) += 1;
            let bad = if !registered {
                a.score.decision == knockoff::decision::Decision::Block
            } else {
                (row.label == Some(true) && a.score.decision != knockoff::decision::Decision::Block)
                    || (row.label == Some(false)
                        && a.score.decision != knockoff::decision::Decision::Allow)
            };
            if (registered == std::env::var("SHOW").is_ok()) && bad {
                eprintln!(
                    "{} {:?} p={:.3} brand={:?} ks={:?} | {} | {:?}",
                    row.label.unwrap(),
                    a.score.decision,
                    a.score.probability,
                    p.features()
                        .brand
                        .as_ref()
                        .map(|b| (&b.name, b.how, b.relation)),
                    p.features().known_share(),
                    row.listing.title,
                    a.reasons
                        .iter()
                        .map(|r| format!("{} {:.2}", r.text, r.weight))
                        .collect::<Vec<_>>()
                );
            }
        }
        eprintln!("registered={registered}: {counts:?}");
    }
}
