//! The plain-text summary printed at the end of training and scoring: overall metrics, the
//! two thresholds, then one row per group.

use std::collections::BTreeMap;

use super::calibration::ECE_BINS;
use super::evaluation::Evaluation;

fn fmt_metric(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.4}")
    } else {
        "n/a".to_owned()
    }
}

/// Aligns columns: the first left-aligned (labels), the rest right-aligned (numbers).
fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let parts: Vec<String> = cells
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, &w))| {
                if i == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    out += &line(&mut rule.iter().map(String::as_str));
    for row in rows {
        out += &line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Human-readable report for the end of training or scoring: overall metrics, the two
/// thresholds, then one row per group. Undefined metrics print as `n/a`.
pub fn summary_table(eval: &Evaluation, per_group: &BTreeMap<String, Evaluation>) -> String {
    let mut out = counts_header(eval);
    out += &overall_table(eval);
    out += "\n";
    out += &thresholds_table(eval);
    if !per_group.is_empty() {
        out += "\n";
        out += &groups_table(per_group);
    }
    out
}

/// Rows, positives, skipped NaN rows and decisions, then a blank line.
fn counts_header(eval: &Evaluation) -> String {
    let mut out = format!(
        "{} rows, {} positives ({})",
        eval.rows,
        eval.positives,
        match eval.rows {
            0 => "n/a".to_owned(),
            rows => format!("{:.2}%", 100.0 * eval.positives as f64 / rows as f64),
        }
    );
    if eval.skipped_nan > 0 {
        out += &format!("; {} rows with NaN probability skipped", eval.skipped_nan);
    }
    let d = &eval.decisions;
    out += &format!(
        "\ndecisions: allow {} / review {} / block {}\n\n",
        d.allow, d.review, d.block
    );
    out
}

fn overall_table(eval: &Evaluation) -> String {
    let overall = vec![
        vec!["ROC-AUC".to_owned(), fmt_metric(eval.roc_auc)],
        vec!["PR-AUC (AP)".to_owned(), fmt_metric(eval.pr_auc)],
        vec![
            "recall@95%P".to_owned(),
            fmt_metric(eval.recall_at_95_precision),
        ],
        vec![
            format!("ECE ({ECE_BINS} bins)"),
            fmt_metric(eval.expected_calibration_error),
        ],
        vec!["Brier".to_owned(), fmt_metric(eval.brier_score)],
    ];
    render_table(&["metric", "value"], &overall)
}

fn thresholds_table(eval: &Evaluation) -> String {
    let thresholds: Vec<Vec<String>> = eval
        .thresholds
        .iter()
        .map(|t| {
            let c = &t.confusion;
            vec![
                t.name.clone(),
                format!("{:.4}", t.threshold),
                fmt_metric(t.precision),
                fmt_metric(t.recall),
                fmt_metric(t.f1),
                c.tp.to_string(),
                c.fp.to_string(),
                c.tn.to_string(),
                c.fn_.to_string(),
            ]
        })
        .collect();
    render_table(
        &[
            "threshold",
            "value",
            "precision",
            "recall",
            "F1",
            "TP",
            "FP",
            "TN",
            "FN",
        ],
        &thresholds,
    )
}

fn groups_table(per_group: &BTreeMap<String, Evaluation>) -> String {
    let groups: Vec<Vec<String>> = per_group
        .iter()
        .map(|(name, e)| {
            vec![
                name.clone(),
                e.rows.to_string(),
                e.positives.to_string(),
                fmt_metric(e.roc_auc),
                fmt_metric(e.recall_at_95_precision),
                fmt_metric(e.expected_calibration_error),
            ]
        })
        .collect();
    render_table(
        &[
            "group",
            "rows",
            "positives",
            "ROC-AUC",
            "recall@95%P",
            "ECE",
        ],
        &groups,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::evaluation::evaluate;
    use crate::eval::testutil::{F, SEL_LABELS, SEL_SCORES, TH};

    #[test]
    fn summary_table_lists_everything() {
        let e = evaluate(&SEL_SCORES, &SEL_LABELS, &TH);
        let mut groups = BTreeMap::new();
        groups.insert("handbags".to_owned(), e.clone());
        groups.insert("sneakers".to_owned(), evaluate(&[0.2], &[F], &TH));
        let table = summary_table(&e, &groups);
        for needle in [
            "6 rows, 3 positives (50.00%)",
            "ROC-AUC",
            "recall@95%P",
            "allow 1 / review 3 / block 2",
            "review     0.5000",
            "block      0.8000",
            "handbags",
            "sneakers",
            "n/a",
        ] {
            assert!(table.contains(needle), "missing {needle:?} in\n{table}");
        }
        assert!(table.lines().all(|l| l == l.trim_end()));
        assert!(!summary_table(&e, &BTreeMap::new()).contains("group"));
    }
}
